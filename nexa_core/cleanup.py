"""The cleanup step (CLI `nexa cleanup` and the nightly maintenance job): plan, show, optionally apply."""

from __future__ import annotations

from pathlib import Path

from nexa_core.layout import Layout


def cleanup(layout: Layout, *, days: float | None, prune_size: str | None, keep_latest: int = 2,
            apply: bool = False, archive: bool = False) -> dict:
    from nexa_core.retention import apply_plan, format_plan, parse_size, plan_cleanup

    plan = plan_cleanup(layout, days=days, prune_size=parse_size(prune_size) if prune_size else None,
                        keep_latest=keep_latest)
    report = {"table": format_plan(plan), "would_free_bytes": plan.freed_bytes,
              "candidates": [str(c.path) for c in plan.delete], "applied": False}
    if apply:
        result = apply_plan(plan, archive=_archiver(layout) if archive else None)
        report.update(applied=True, freed_bytes=result["freed_bytes"],
                      deleted=[str(c.path) for c in result["deleted"]],
                      skipped=[f"{c.path}: {why}" for c, why in result["skipped"]], errors=result["errors"])
    return report


def _archiver(layout: Layout):
    """Copy a candidate to durable storage (S3 or the local mirror), verified, before it is deleted."""
    from nexa_core.storage.mirror import store_from_env

    store = store_from_env(layout)

    def archive(path: Path) -> None:
        key = f"archive/{path.relative_to(path.anchor).as_posix().replace(':', '')}"
        store.push(path, key) if path.is_dir() else store.push_file(path, key)

    return archive
