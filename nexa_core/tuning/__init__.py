"""Hyperparameter search: an Optuna study whose trials are ordinary runs (claimed, trained, evaluated, manifested).

space.py (what is searched), samplers.py (how points are drawn and weak trials stopped), study.py (the study
database, its locks and dead trials), trial.py (one trial as a run), search.py (the loop), report.py (leaderboard,
best.yaml). `nexa tune` (cli/tune.py) drives it; docs/tuning.md describes it."""
