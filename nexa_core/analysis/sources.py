"""What one run left on disk, as the flat figures of its leaderboard row (plain Python, no pandas).

Per run, from `<durable>/runs/`:

    manifests/<run_id>.json       the contract: metrics, created_at, dataset, model (skipped with a warning if corrupt)
    <run_id>/run.json             status, dataset_version, base model, train result (global_step, wall_seconds)
    <run_id>/logs/train_log.jsonl the training loss series: mean, min and final logged loss
    <run_id>/telemetry/<stage>.json  one summary per measured stage (train, evaluate): GPU-hours, energy, cost summed

and from `<durable>/deploy/`: whether the run is deployed now and whether it ever was.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import RUN_ID_RE
from nexa_core.release.deployment import model_line
from nexa_core.release.manifest import RunManifest
from nexa_core.telemetry.report import REPORT_NAME
from nexa_core.training.callbacks import read_log
from nexa_core.training.record import read_record

# Summed over a run's telemetry stages; None when no stage measured it (energy without a GPU counter).
TELEMETRY_SUMS = ("gpu_hours", "energy_kwh", "cost_usd")


@dataclass
class Deployments:
    """The deploy state every row is compared with, read once."""

    current: str | None = None
    ever: set[str] = field(default_factory=set)
    lines: dict[str, str] = field(default_factory=dict)  # run id -> line recorded by its latest deploy


def manifest_paths(layout: Layout) -> list[Path]:
    """Every run manifest (the infra report shares the folder and is not one), by name."""
    folder = layout.manifests_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if p.name != REPORT_NAME and not p.name.startswith("."))


def inputs_fingerprint(layout: Layout) -> str:
    """Changes when a manifest is added, removed or rewritten, or a deploy or rollback takes effect (names, sizes and
    mtimes of the manifests and the deploy history, and where current_model points): the refresh sensor's cursor."""
    from nexa_core.release.deploy import current_model_path, history_path

    entries = []
    for path in [*manifest_paths(layout), history_path(layout)]:
        try:
            stat = path.stat()
        except OSError:
            continue  # absent (no deploy yet) or removed since the listing: the next tick sees it gone
        entries.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    try:
        entries.append(f"current:{os.readlink(current_model_path(layout))}")
    except OSError:
        pass  # nothing deployed
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


def read_manifests(layout: Layout, warnings: list[str]) -> Iterator[tuple[Path, RunManifest]]:
    """Each readable manifest; a corrupt one (bad JSON, a missing or mistyped key, a bad run id) is skipped with a
    warning naming its file and what is wrong, so one bad file never hides the other runs."""
    from pydantic import ValidationError

    for path in manifest_paths(layout):
        try:
            manifest = RunManifest.model_validate(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError) as err:
            warnings.append(f"skipped {path}: cannot read it ({err})")
            continue
        except ValueError as err:  # JSONDecodeError and pydantic's ValidationError are both ValueErrors
            if isinstance(err, ValidationError):
                first = err.errors()[0]
                reason = f"{'.'.join(str(p) for p in first['loc']) or 'manifest'}: {first['msg']}"
            else:
                reason = f"not valid JSON ({err})"
            warnings.append(f"skipped {path}: {reason}")
            continue
        if not RUN_ID_RE.fullmatch(manifest.run_id):
            warnings.append(f"skipped {path}: run_id {manifest.run_id!r} is not a valid run id")
            continue
        yield path, manifest


def deployments(layout: Layout, warnings: list[str]) -> Deployments:
    from nexa_core.release import deploy

    out = Deployments()
    try:
        out.current = deploy.current_release(layout)
        records = deploy.history(layout)
    except NexaError as err:  # a broken pointer or history must not hide the leaderboard
        warnings.append(f"deploy state unreadable, deployed columns may be incomplete: {err}")
        return out
    for record in records:
        if record.get("run_id"):
            out.ever.add(record["run_id"])
            if record.get("line"):
                out.lines[record["run_id"]] = record["line"]
    if out.current:
        out.ever.add(out.current)
    return out


def loss_figures(log_path: Path) -> dict[str, float | None]:
    """Mean, min and final of the training loss logged per logging step (raw, not the EMA)."""
    losses = [float(r["loss"]) for r in read_log(log_path) if isinstance(r.get("loss"), (int, float))]
    return {"train_loss_mean": fmean(losses) if losses else None, "train_loss_min": min(losses, default=None),
            "train_loss_final": losses[-1] if losses else None}


def telemetry_figures(folder: Path) -> dict[str, Any]:
    """GPU-hours, energy and cost summed over the run's stage summaries, and which stages were measured."""
    sums: dict[str, float | None] = dict.fromkeys(TELEMETRY_SUMS)
    stages = []
    for path in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a summary cut by a crash: the stage's figures are unknown, not zero
        if not isinstance(summary, dict):
            continue
        stages.append(path.stem)
        for key in TELEMETRY_SUMS:
            value = summary.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sums[key] = (sums[key] or 0.0) + float(value)
    return {**sums, "telemetry_stages": ",".join(stages) or None}


def record_figures(record: dict | None) -> dict[str, Any]:
    """Status, dataset version, base model, steps and runtime from run.json (absent ones as None)."""
    record = record or {}
    train = record.get("train") if isinstance(record.get("train"), dict) else {}
    metrics = train.get("train_metrics") if isinstance(train.get("train_metrics"), dict) else {}
    # wall_seconds is the whole train() call (resumes included); train_runtime is HF's own, its fallback.
    runtime = metrics.get("wall_seconds", metrics.get("train_runtime"))
    return {"status": record.get("status"), "record_dataset_version": record.get("dataset_version"),
            "base_model": record.get("model"), "global_step": train.get("global_step"),
            "runtime_seconds": float(runtime) if isinstance(runtime, (int, float)) else None}


def run_row(layout: Layout, path: Path, manifest: RunManifest, deployed: Deployments) -> dict[str, Any]:
    """One leaderboard row: identity first, then the manifest's metrics, loss, time, cost and deploy state."""
    run_dir = layout.run_dir(manifest.run_id)
    if not run_dir.is_dir() and Path(manifest.run_dir).is_dir():
        run_dir = Path(manifest.run_dir)  # a durable folder moved since: the manifest's own path still works
    record = record_figures(read_record(run_dir))
    from_record = record.pop("record_dataset_version")
    row: dict[str, Any] = {
        "run_id": manifest.run_id,
        "line": model_line(manifest.run_id, deployed.lines.get(manifest.run_id)),
        "model": manifest.model,
        "dataset": manifest.dataset,
        "dataset_version": manifest.version or from_record,
        "created_at": manifest.created_at,
        **{k: float(v) for k, v in manifest.metrics.items()},
        **loss_figures(run_dir / "logs" / "train_log.jsonl"),
        **record,
        **telemetry_figures(run_dir / "telemetry"),
        "deployed": manifest.run_id == deployed.current,
        "ever_deployed": manifest.run_id in deployed.ever,
        "manifest_path": str(path),
        "run_dir": str(run_dir),
    }
    if "train_runtime" in row and row["runtime_seconds"] is None:
        row["runtime_seconds"] = row["train_runtime"]  # no run.json (e.g. pulled without it): the manifest's figure
    return row


def collect_rows(layout: Layout) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run's row and the warnings met on the way (skipped manifests, unreadable deploy state)."""
    warnings: list[str] = []
    deployed = deployments(layout, warnings)
    return [run_row(layout, path, m, deployed) for path, m in read_manifests(layout, warnings)], warnings
