"""The cleanup step (CLI `nexa cleanup` and the nightly maintenance job): plan, show, optionally apply."""

from __future__ import annotations

from pathlib import Path

from nexa_core.common.layout import Layout
from nexa_core.storage.settings import StorageSettings


def cleanup(layout: Layout, *, storage: StorageSettings, days: float | None, prune_size: str | None,
            keep_latest: int = 2, apply: bool = False, archive: bool = False) -> dict:
    """Local tiers (checkpoints, packages, releases) and the archive in the durable store of `storage`
    (S3 or the local mirror), by one policy."""
    from nexa_core.retention import apply_plan, format_plan, parse_size, plan_cleanup
    from nexa_core.retention.remote import apply_remote, plan_remote
    from nexa_core.storage.settings import open_durable

    size = parse_size(prune_size) if prune_size else None
    plan = plan_cleanup(layout, days=days, prune_size=size, keep_latest=keep_latest)
    store = open_durable(storage, layout)
    remote = plan_remote(store, days=days, prune_size=size)
    table = format_plan(plan) + "".join(
        f"\n{store.describe(c.key)}  {c.size_bytes} bytes  delete  {'; '.join(c.reasons)}" for c in remote)
    report = {"table": table, "would_free_bytes": plan.freed_bytes + sum(c.size_bytes for c in remote),
              "candidates": [str(c.path) for c in plan.delete] + [store.describe(c.key) for c in remote],
              "applied": False}
    if apply:
        result = apply_plan(plan, archive=_archiver(store) if archive else None)
        remote_freed = apply_remote(store, remote)
        report.update(applied=True, freed_bytes=result["freed_bytes"] + remote_freed,
                      deleted=[str(c.path) for c in result["deleted"]] + [store.describe(c.key) for c in remote],
                      skipped=[f"{c.path}: {why}" for c, why in result["skipped"]], errors=result["errors"])
    return report


def _archiver(store):
    """Copy a candidate to durable storage (S3 or the local mirror), verified, before it is deleted."""

    def archive(path: Path) -> None:
        key = f"archive/{path.relative_to(path.anchor).as_posix().replace(':', '')}"
        store.push(path, key) if path.is_dir() else store.push_file(path, key)

    return archive
