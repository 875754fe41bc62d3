"""The pipeline's steps as plain functions: the Dagster assets and the `nexa` CLI both call these."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from nexa_core.config import NexaConfig
from nexa_core.errors import NexaError
from nexa_core.gates import gate_failures
from nexa_core.layout import Layout
from nexa_core.manifest import RunManifest, now_iso, numeric_metrics, write_manifest
from nexa_core.run_ids import new_run_id, validate_run_id


def prepare(cfg: NexaConfig, layout: Layout):
    from nexa_core.data import prepare_dataset

    return prepare_dataset(cfg.data, layout.datasets_dir, seed=cfg.training.distributed.seed)


def claim_run(cfg: NexaConfig, dataset_version: str, layout: Layout, run_id: str | None = None, *,
              name: str | None = None, **work: object) -> tuple[str, bool]:
    """Pick the run id: the one asked for, else an unfinished run of the same work (resume), else a new one.

    `work` holds what else defines the run besides the config (a student's init, pairs and KD settings)."""
    from nexa_core.training.record import find_unfinished_run, work_key

    if run_id:
        validate_run_id(run_id)
        return run_id, layout.run_dir(run_id).exists()
    unfinished = find_unfinished_run(layout.runs_dir, work_key(cfg, dataset_version, **work))
    if unfinished:
        return unfinished, True
    run_id = new_run_id(name or cfg.name)
    while layout.run_dir(run_id).exists():  # two runs in one second: take the next free second
        time.sleep(1)
        run_id = new_run_id(name or cfg.name)
    return run_id, False


def train_run(cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout, **student):
    from nexa_core.training import train

    return train(cfg, Path(dataset_dir), run_id, layout, mirror=True, **student)


def mirror_run(layout: Layout, run_id: str) -> dict:
    """Push the run's final/, best checkpoint, package and manifest to durable storage (verified)."""
    from nexa_core.storage.mirror import mirror_run as push, store_from_env

    return push(store_from_env(layout), layout, run_id)


def evaluate_run(cfg: NexaConfig, run_id: str, dataset_dir: Path, layout: Layout) -> dict:
    from nexa_core.evaluation import evaluate_model

    run_dir = layout.run_dir(run_id)
    return evaluate_model(run_dir / "final", dataset_dir, run_dir, batch_size=cfg.evaluation.batch_size,
                          max_length=cfg.model.max_length, save_predictions=cfg.evaluation.save_predictions)


def record_manifest(cfg: NexaConfig, run_id: str, layout: Layout, dataset, report: dict, train_metrics: dict) -> Path:
    run_dir = layout.run_dir(run_id)
    manifest = RunManifest(
        run_id=run_id,
        config=str(run_dir / "config.yaml"),
        run_dir=str(run_dir),
        metrics=numeric_metrics(report, train_metrics),
        checkpoint=str(run_dir / "final"),
        created_at=now_iso(),
        version=dataset.version,
        dataset=f"{dataset.source}@{dataset.version}",
        model=_architecture(run_dir / "final", cfg.model.name_or_path),
    )
    return write_manifest(layout, manifest)


def check_gates(layout: Layout, run_id: str) -> list[str]:
    """Gate failures for a finished run, from its own config snapshot and metrics.json."""
    run_dir = layout.run_dir(run_id)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise NexaError(f"run {run_id} has no metrics.json at {metrics_path}; evaluate it first (`nexa train`)")
    snapshot = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
    thresholds = (snapshot.get("evaluation") or {}).get("thresholds", {})
    return gate_failures(json.loads(metrics_path.read_text()), thresholds)


def release_gate(layout: Layout, run_id: str, action: str, force: bool) -> None:
    failures = check_gates(layout, run_id)
    if failures and not force:
        raise NexaError(f"run {run_id} fails its evaluation gates ({'; '.join(failures)}); not {action} it "
                        f"(pass --force to override)")


def package_run(layout: Layout, run_id: str, force: bool = False) -> Path:
    from nexa_core.packaging import build_package

    release_gate(layout, run_id, "packaging", force)
    return build_package(layout, run_id)


def deploy_run(layout: Layout, run_id: str, force: bool = False) -> Path:
    from nexa_core.deploy import deploy

    release_gate(layout, run_id, "deploying", force)
    if not layout.package_path(run_id).is_file():
        package_run(layout, run_id, force=force)
    return deploy(layout, run_id)


def _architecture(final_dir: Path, source: str) -> str:
    try:
        arch = json.loads((final_dir / "config.json").read_text()).get("architectures", ["unknown"])[0]
    except (OSError, ValueError, IndexError):
        arch = "unknown"
    return f"{arch} (from {source})"
