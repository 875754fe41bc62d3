"""Analysis across runs: the leaderboard (`nexa analyze`, the `run_leaderboard` asset), the runbooks' analyze_runs.py.

`sources` reads what each run left on disk (no pandas, so the Dagster sensor can fingerprint the manifests cheaply);
`leaderboard` joins it into one pandas frame; `query` sorts and filters it; `export` writes tables; `plots` draws;
`publish` stores the table and plots under `<durable>/analysis/` for the asset.
"""
