"""Mirror a run to durable storage and restore it elsewhere: `<prefix>/<run_id>/{final,best,package,manifest}`.

The store comes from `StorageSettings` through `open_durable` (settings.py): S3 under a prefix, else a local
folder under the durable tier: same interface, same verification, no code change.
"""

from __future__ import annotations

import json
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import validate_run_id
from nexa_core.storage.store import DurableStore


def _best_checkpoint(layout: Layout, run_id: str) -> Path | None:
    record = layout.run_dir(run_id) / "run.json"
    if not record.is_file():
        return None
    best = (json.loads(record.read_text()).get("train") or {}).get("best_checkpoint")
    return Path(best) if best and Path(best).is_dir() else None


def _files(layout: Layout, run_id: str) -> list[tuple[str, Path]]:
    """Single files mirrored beside final/: the package, the manifest, and the run's record, config snapshot
    and metrics (deploy's gates read those on the machine that pulls the run)."""
    run_dir = layout.run_dir(run_id)
    return [("package", layout.package_path(run_id)), ("manifest", layout.manifest_path(run_id)),
            *((name.split(".")[0], run_dir / name) for name in ("run.json", "config.yaml", "metrics.json"))]


def mirror_run(store: DurableStore, layout: Layout, run_id: str) -> dict:
    """Push what a run must never lose: final/, its best checkpoint, its package and its manifest."""
    validate_run_id(run_id)
    final = layout.run_dir(run_id) / "final"
    if not final.is_dir():
        raise NexaError(f"run {run_id} has no final/ at {final}; train it before mirroring")
    pushed = {"final": store.push(final, f"{run_id}/final")}
    best = _best_checkpoint(layout, run_id)
    if best:
        pushed["best"] = store.push(best, f"{run_id}/best")
    for name, path in _files(layout, run_id):
        if path.is_file():
            pushed[name] = store.push_file(path, f"{run_id}/{name}/{path.name}")
    return {name: {"uri": rec.get("uri"), **rec.get("stats", {})} for name, rec in pushed.items()}


def pull_run(store: DurableStore, layout: Layout, run_id: str, overwrite: bool = False) -> dict:
    """Restore a mirrored run (verified) so that `nexa deploy <run_id>` works on this machine."""
    validate_run_id(run_id)
    if not store.is_complete(f"{run_id}/final"):
        raise NexaError(f"run {run_id}: no complete mirror at {store.describe(run_id + '/final')}; "
                        "check the run id (`nexa pull` lists nothing partial) or mirror it first")
    out = {"final": store.pull(f"{run_id}/final", layout.run_dir(run_id) / "final", overwrite=overwrite)["path"]}
    for name, path in _files(layout, run_id):
        key = f"{run_id}/{name}/{path.name}"
        if store.is_complete(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            out[name] = store.pull_file(key, path, overwrite=overwrite).get("path", str(path))
    return out
