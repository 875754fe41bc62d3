"""Fake storage trees for the retention tests: small files under tmp_path with mtimes set relative to NOW."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from nexa_core.common.layout import Layout

NOW = time.time()
DAY = 86400.0
R1, R2, R3 = "alpha_20260101_000000", "beta_20260102_000000", "gamma_20260103_000000"


# ------------------------------------------------------------------------------------------ builders


def make_layout(root: Path) -> Layout:
    return Layout(scratch=root / "scratch", durable=root / "durable", shared=root / "shared")


def set_age(path: Path, days: float) -> None:
    """Give `path` and everything under it the mtime NOW - days (children first)."""
    stamp = NOW - days * DAY
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path, topdown=False):
            for name in filenames + dirnames:
                os.utime(os.path.join(dirpath, name), (stamp, stamp), follow_symlinks=False)
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def add_checkpoint(layout: Layout, run_id: str, step: int, age: float, *, size: int = 100,
                   best_step: int | None = None, complete: bool = True, optimizer: bool = True) -> Path:
    ckpt = layout.checkpoints_dir(run_id) / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"w" * size)
    if optimizer:
        (ckpt / "optimizer.pt").write_bytes(b"o" * 7)
    if complete:
        best = str(layout.checkpoints_dir(run_id) / f"checkpoint-{best_step}") if best_step is not None else None
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "best_model_checkpoint": best}))
    set_age(ckpt, age)
    return ckpt


def settle_run(layout: Layout, run_id: str, age: float | None = None) -> Path:
    """Set the mtimes of the run's scratch folder and its direct sub-folders (checkpoints/, logs/), which
    creating entries bumped: to `age`, or to the newest thing inside them."""
    run = layout.scratch / "runs" / run_id
    folders = [run, *(p for p in run.iterdir() if p.is_dir())]
    inner = [p.lstat().st_mtime for p in run.rglob("*") if p not in folders]
    stamp = NOW - age * DAY if age is not None else max(inner, default=NOW)
    for folder in folders:
        os.utime(folder, (stamp, stamp))
    return run


def write_record(layout: Layout, run_id: str, status: str = "complete", best_step: int | None = None,
                 final: bool = True) -> None:
    run_dir = layout.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    best = str(layout.checkpoints_dir(run_id) / f"checkpoint-{best_step}") if best_step is not None else None
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "status": status,
                                                  "train": {"best_checkpoint": best}}))
    if final:
        (run_dir / "final").mkdir(exist_ok=True)
        (run_dir / "final" / "model.safetensors").write_bytes(b"final")


def add_package(layout: Layout, run_id: str, age: float, size: int = 50) -> Path:
    path = layout.package_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"p" * size)
    set_age(path, age)
    return path


def add_release(layout: Layout, run_id: str, age: float) -> Path:
    release = layout.deploy_dir / "releases" / run_id
    (release / "model").mkdir(parents=True)
    (release / "model" / "model.safetensors").write_bytes(b"r" * 30)
    (release / "SHA256SUMS").write_text("x\n")
    set_age(release, age)
    return release


def write_deploys(layout: Layout, records: list[tuple[str, str]]) -> None:
    """history.jsonl from (action, run_id) records that all took effect; current_model -> the last record's release."""
    layout.deploy_dir.mkdir(parents=True, exist_ok=True)
    previous = [None] + [r for _, r in records[:-1]]
    lines = [json.dumps({"action": a, "run_id": r, "previous_run_id": p, "deployed_at": "2026-01-01T00:00:00Z"})
             for (a, r), p in zip(records, previous)]
    (layout.deploy_dir / "history.jsonl").write_text("".join(line + "\n" for line in lines))
    link = layout.deploy_dir / "current_model"
    if link.is_symlink():
        link.unlink()
    if records:
        os.symlink(f"releases/{records[-1][1]}/model", link)


def add_manifest(layout: Layout, run_id: str, age: float, checkpoint: str | None, run_dir: str | None = None) -> Path:
    path = layout.manifest_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = datetime.fromtimestamp(NOW - age * DAY, timezone.utc).isoformat(timespec="seconds")
    path.write_text(json.dumps({"run_id": run_id, "checkpoint": checkpoint, "created_at": created,
                                "run_dir": run_dir or str(layout.run_dir(run_id))}))
    set_age(path, age)
    return path


def snapshot(root: Path) -> dict[str, tuple[bytes, float]]:
    """Every file under root (symlinks as their target text) with its content and mtime."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            data = os.readlink(p).encode() if os.path.islink(p) else Path(p).read_bytes()
            out[os.path.relpath(p, root)] = (data, os.lstat(p).st_mtime)
    return out


def files_under(snap: dict, root: Path, path: Path) -> dict:
    rel = os.path.relpath(path, root)
    return {k: v for k, v in snap.items() if k == rel or k.startswith(rel + os.sep)}


def intact(root: Path, before: dict, path: Path) -> bool:
    """`path` still holds every file it held before, unchanged (and no extra ones)."""
    return files_under(snapshot(root), root, path) == files_under(before, root, path) and path.exists()


def standard_run(layout: Layout, run_id: str = R1, *, status: str = "complete", best: int = 20) -> list[Path]:
    """Checkpoints 10..50 aged 10, 9, 8, 3, 1 days; run.json names `best` as the best checkpoint."""
    ckpts = [add_checkpoint(layout, run_id, step, age, best_step=best)
             for step, age in [(10, 10), (20, 9), (30, 8), (40, 3), (50, 1)]]
    write_record(layout, run_id, status=status, best_step=best)
    settle_run(layout, run_id)
    return ckpts


def names(cands) -> set[str]:
    return {c.path.name for c in cands}
