"""Release decisions as plain functions (manifest, gates, package, deploy, mirror): the `nexa` CLI and the
Dagster assets both call these, so a run is released by the same rules however it is driven."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig
from nexa_core.release.gates import gate_failures
from nexa_core.release.manifest import RunManifest, now_iso, numeric_metrics, write_manifest
from nexa_core.release.tracked import track_release
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
    path = write_manifest(layout, manifest)
    track_release(run_dir, report, path)  # after the manifest: tracking never decides whether a run is recorded
    return path


def run_thresholds(layout: Layout, run_id: str) -> dict[str, float]:
    """The evaluation gates a run is judged by: its own config snapshot's, whatever the recipe says today."""
    snapshot_path = layout.run_dir(run_id) / "config.yaml"
    if not snapshot_path.is_file():
        raise NexaError(f"run {run_id} has no config snapshot at {snapshot_path}; its gates are unknown, so train it "
                        "again (or restore the run folder with `nexa pull`)")
    snapshot = yaml.safe_load(snapshot_path.read_text()) or {}
    return dict((snapshot.get("evaluation") or {}).get("thresholds", {}))


def check_gates(layout: Layout, run_id: str) -> list[str]:
    """Gate failures for a finished run, from its own config snapshot and metrics.json."""
    if not layout.run_dir(run_id).is_dir():
        raise NexaError(f"no run {run_id} under {layout.runs_dir}; check the id, or restore a mirrored run with "
                        f"`nexa pull {run_id}`")
    metrics_path = layout.run_dir(run_id) / "metrics.json"
    if not metrics_path.is_file():
        raise NexaError(f"run {run_id} has no metrics.json at {metrics_path}; evaluate it first (`nexa train`)")
    return gate_failures(json.loads(metrics_path.read_text()), run_thresholds(layout, run_id))


def release_gate(layout: Layout, run_id: str, action: str, force: bool) -> list[str]:
    """Refuse a run that fails its gates unless forced; returns the failures a forced release overrides."""
    failures = check_gates(layout, run_id)
    if failures and not force:
        raise NexaError(f"run {run_id} fails its evaluation gates: {'; '.join(failures)}; not {action} it "
                        f"(pass --force to override)")
    return failures


def package_run(layout: Layout, run_id: str, force: bool = False) -> Path:
    from nexa_core.release.packaging import build_package

    release_gate(layout, run_id, "packaging", force)
    return build_package(layout, run_id)


class ChampionKept(NexaError):
    """A challenger that did not beat the deployed champion: an expected outcome, not a fault of the run."""

    def __init__(self, outcome: str, run_id: str, decision: dict):
        super().__init__(f"{outcome}; not deploying {run_id} (pass --force to deploy it anyway)")
        self.outcome, self.decision = outcome, decision


def run_config(layout: Layout, run_id: str) -> NexaConfig:
    """The recipe a run was trained with (its config snapshot), as `nexa deploy` judges it."""
    from nexa_core.config import validate_config

    path = layout.run_dir(run_id) / "config.yaml"
    if not path.is_file():
        raise NexaError(f"run {run_id} has no config snapshot at {path}; its promotion settings are unknown, so "
                        "train it again (or restore the run folder with `nexa pull`)")
    try:
        return validate_config(yaml.safe_load(path.read_text()) or {})
    except NexaError as err:
        raise NexaError(f"{path}: {err}") from None


def deploy_run(layout: Layout, run_id: str, force: bool = False, cfg: NexaConfig | None = None,
               origin: dict | None = None) -> Path:
    """Deploy a run if it passes its gates and beats the model deployed now on its own test split
    (champion/challenger, `evaluation.promotion` of `cfg`, else of the run's config snapshot).

    The champion check runs under the deploy lock, so two deploys cannot both pass against the same champion; a
    challenger that loses raises `ChampionKept`. With `force`, or when `evaluation.promotion.scope` does not gate
    the run, whatever would have refused it is written to the deploy history as `overrides`. `origin` names who
    deploys (see `deploy.deploy`)."""
    from nexa_core.release.deploy import deploy
    from nexa_core.release.promotion import decision_against, kept_champion

    overridden = release_gate(layout, run_id, "deploying", force)
    if not layout.package_path(run_id).is_file():
        package_run(layout, run_id, force=force)

    def guard(current: str | None) -> list[str]:
        try:
            decision = decision_against(lambda: cfg or run_config(layout, run_id), layout, run_id, current)
        except NexaError as err:
            if not force:
                raise
            return [*overridden, f"not compared with the champion {current}: {err}"]
        if decision is None or decision["promote"]:
            return overridden
        kept = kept_champion(decision)
        if decision.get("gated", True) and not force:
            raise ChampionKept(kept, run_id, decision)
        why = "--force" if force else "evaluation.promotion.scope does not gate it"
        return [*overridden, f"{run_id} lost to the champion, deployed by {why}: {decision['reason']}"]

    return deploy(layout, run_id, guard=guard, origin=origin)


def _architecture(final_dir: Path, source: str) -> str:
    try:
        arch = json.loads((final_dir / "config.json").read_text()).get("architectures", ["unknown"])[0]
    except (OSError, ValueError, IndexError):
        arch = "unknown"
    return f"{arch} (from {source})"
