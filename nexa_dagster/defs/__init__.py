"""The code location's definitions, one folder per domain; `nexa_dagster.definitions` loads this folder
(`dg.load_from_defs_folder`), so `dg list defs` / `dg check defs` see exactly what the UI and the daemon see."""
