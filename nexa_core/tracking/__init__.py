"""Experiment tracking: MLflow runs and registry, TensorBoard event files, W&B (nexa_core/tracking/*.py).

Everything here is fail-soft once training has started: a tracking backend that goes away is reported once and
the run goes on, its local record (run.json, logs, metrics.json) complete."""
