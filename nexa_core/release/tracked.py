"""What a recorded release adds to its MLflow run: the test metrics, the telemetry summary (GPU-hours, energy,
cost), the manifest, metrics.json and loss curve as artifacts, and the model, logged and registered. Called by
`record_manifest`, so the CLI and both Dagster model lines track a release the same way."""

from __future__ import annotations

import json
from pathlib import Path

from nexa_core.tracking.registry import log_and_register
from nexa_core.tracking.runs import attach, note_failure

TELEMETRY = ("gpu_hours", "energy_kwh", "cost_usd", "wall_seconds")


def track_release(run_dir: Path, report: dict, manifest_path: Path) -> None:
    tracker = attach(run_dir)
    if not tracker:
        return
    metrics = {f"test_{k}": report[k] for k in ("accuracy", "macro_f1", "loss", "agreement") if k in report}
    metrics.update({f"test_f1_{name}": v["f1"] for name, v in report.get("per_class", {}).items()})
    tracker.log_metrics({**metrics, **telemetry_figures(run_dir / "telemetry")})
    curve = _loss_curve(run_dir)
    for path in (manifest_path, run_dir / "metrics.json", curve):
        if path is not None:
            tracker.log_artifact(path, "run")
    if _is_classifier(run_dir / "final"):  # the transformers flavor serves text classification; causal students
        log_and_register(run_dir, run_dir / "final")  # keep their files as run artifacts only
    note_failure(run_dir, tracker)


def telemetry_figures(folder: Path) -> dict[str, float]:
    """Per stage (`telemetry_train_gpu_hours`, ...) and summed over stages (`telemetry_gpu_hours`, ...)."""
    out: dict[str, float] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        # Without a GPU, GPU-hours, energy and cost would read as measured zeros: only the wall time is logged.
        for key in TELEMETRY if summary.get("gpu_count") else ("wall_seconds",):
            value = summary.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"telemetry_{path.stem}_{key}"] = float(value)
                out[f"telemetry_{key}"] = out.get(f"telemetry_{key}", 0.0) + float(value)
    return out


def _loss_curve(run_dir: Path) -> Path | None:
    from nexa_core.training.plots import loss_curve

    log = run_dir / "logs" / "train_log.jsonl"
    return loss_curve(log, run_dir / "logs" / "loss_curve.png") if log.is_file() else None


def _is_classifier(final_dir: Path) -> bool:
    try:
        architectures = json.loads((final_dir / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any(a.endswith("ForSequenceClassification") for a in architectures)
