"""Release decisions as plain functions (manifest, gates, package, deploy, mirror): the `nexa` CLI and the
Dagster assets both call these, so a run is released by the same rules however it is driven."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nexa_core.config import NexaConfig
from nexa_core.common.errors import NexaError
from nexa_core.release.gates import gate_failures
from nexa_core.common.layout import Layout
from nexa_core.release.manifest import RunManifest, now_iso, numeric_metrics, write_manifest
from nexa_core.storage.settings import StorageSettings


def mirror_run(layout: Layout, run_id: str, storage: StorageSettings) -> dict:
    """Push the run's final/, best checkpoint, package and manifest to the durable store of `storage` (verified)."""
    from nexa_core.storage.mirror import mirror_run as push
    from nexa_core.storage.settings import open_durable

    return push(open_durable(storage, layout), layout, run_id)


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
    from nexa_core.release.packaging import build_package

    release_gate(layout, run_id, "packaging", force)
    return build_package(layout, run_id)


def deploy_run(layout: Layout, run_id: str, force: bool = False) -> Path:
    from nexa_core.release.deploy import deploy

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
