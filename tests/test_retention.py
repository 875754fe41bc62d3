"""Retention (`cleanup --days 7 --prune-size +2G`): dry runs, deletions, protections, crash safety.

Every tree is fake: small files under tmp_path with mtimes set by os.utime relative to NOW.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nexa_core.errors import NexaError
from nexa_core.layout import Layout
from nexa_core.retention import apply_plan, format_plan, parse_size, plan_cleanup
from nexa_core.retention import apply as apply_mod

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
    """history.jsonl from (action, run_id) records; current_model -> the last record's release."""
    layout.deploy_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"action": a, "run_id": r, "previous_run_id": None, "deployed_at": "2026-01-01T00:00:00Z"})
             for a, r in records]
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


@pytest.fixture
def layout(tmp_path) -> Layout:
    return make_layout(tmp_path)


def standard_run(layout: Layout, run_id: str = R1, *, status: str = "complete", best: int = 20) -> list[Path]:
    """Checkpoints 10..50 aged 10, 9, 8, 3, 1 days; run.json names `best` as the best checkpoint."""
    ckpts = [add_checkpoint(layout, run_id, step, age, best_step=best)
             for step, age in [(10, 10), (20, 9), (30, 8), (40, 3), (50, 1)]]
    write_record(layout, run_id, status=status, best_step=best)
    settle_run(layout, run_id)
    return ckpts


def names(cands) -> set[str]:
    return {c.path.name for c in cands}


def test_importing_retention_loads_neither_dagster_nor_torch():
    code = ("import sys, nexa_core.retention; "
            "print(sorted(m for m in ('dagster', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_record_file_name_matches_the_trainer():
    from nexa_core.retention.protect import RECORD

    # Read, not imported: importing nexa_core.training loads transformers.
    source = (Path(__file__).resolve().parents[1] / "nexa_core" / "training" / "record.py").read_text()
    assert f'RECORD = "{RECORD}"' in source


# ------------------------------------------------------------------------------------------ sizes


@pytest.mark.parametrize("text,expected", [
    ("+2G", 2 * 1024**3), ("2G", 2 * 1024**3), ("500M", 500 * 1024**2), ("1.5G", int(1.5 * 1024**3)),
    ("100K", 102400), ("1024", 1024), ("2g", 2 * 1024**3), ("10KiB", 10240), ("3MB", 3 * 1024**2), ("0", 0),
    (" +1T ", 1024**4), ("7B", 7),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "+", "2X", "G", "-2G", "1,5G", "2 G B", "1e3", "abc", "++2G", "nan", None, 1.5])
def test_bad_prune_size_names_the_flag_and_an_example(text):
    with pytest.raises(NexaError) as err:
        parse_size(text)
    assert "--prune-size" in str(err.value) and "+2G" in str(err.value)


@pytest.mark.parametrize("kwargs", [{"days": -1}, {"days": float("nan")}, {"days": "7"}, {"prune_size": -5},
                                    {"prune_size": "2G"}, {"keep_latest": -1}, {"kinds": ["bogus"]}])
def test_bad_arguments_are_refused(layout, kwargs):
    args = {"days": 7, "prune_size": None} | kwargs
    with pytest.raises(NexaError):
        plan_cleanup(layout, now=NOW, **args)


# ------------------------------------------------------------------------------------------ dry run


def test_dry_run_lists_what_would_go_and_why_and_deletes_nothing(layout, tmp_path):
    standard_run(layout, best=20)
    before = snapshot(tmp_path)

    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=2, now=NOW)

    assert snapshot(tmp_path) == before
    assert names(plan.delete) == {"checkpoint-10", "checkpoint-30"}
    assert all(c.reasons == ["older than 7 days"] and c.kind == "checkpoint" for c in plan.delete)
    kept = {c.path.name: c for c in plan.keep}
    assert "best checkpoint (run.json)" in kept["checkpoint-20"].protected_by
    assert "otherwise: older than 7 days" in kept["checkpoint-20"].why
    assert any("latest 2" in p for p in kept["checkpoint-50"].protected_by)
    assert kept["checkpoint-40"].protected_by and "latest 2" in kept["checkpoint-40"].why
    assert plan.freed_bytes == sum(c.size_bytes for c in plan.delete) == 2 * (100 + 7 + len(
        (plan.delete[0].path / "trainer_state.json").read_bytes()))

    table = format_plan(plan)
    header, *rows = table.splitlines()
    assert header.split() == ["PATH", "SIZE", "AGE", "ACTION", "REASON"]
    row10 = next(r for r in rows if "checkpoint-10" in r)
    assert "delete" in row10 and "older than 7 days" in row10 and "10.0d" in row10 and "B" in row10
    assert "keep" in next(r for r in rows if "checkpoint-20" in r)
    assert "would delete 2 of 5 items" in table


def test_an_empty_or_missing_storage_tree_plans_nothing(layout):
    plan = plan_cleanup(layout, days=7, prune_size=0, now=NOW)
    assert plan.delete == plan.keep == plan.leftovers == plan.warnings == [] and plan.freed_bytes == 0
    assert apply_plan(plan)["deleted"] == [] and "would delete 0 of 0 items" in format_plan(plan)


def test_apply_deletes_exactly_the_plan(layout, tmp_path):
    standard_run(layout, best=20)
    standard_run(layout, R2, best=50)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    before = snapshot(tmp_path)

    result = apply_plan(plan)

    gone = {c.path for c in plan.delete}
    assert {c.path for c in result["deleted"]} == gone and result["skipped"] == []
    assert result["freed_bytes"] == plan.freed_bytes > 0
    assert all(not p.exists() for p in gone)
    after = snapshot(tmp_path)
    expected = {k: v for k, v in before.items()
                if not any(k.startswith(os.path.relpath(p, tmp_path) + os.sep) for p in gone)}
    assert after == expected
    assert not list(tmp_path.rglob(".deleting-*"))
    # Nothing left to do, and deleting checkpoints did not make their runs look younger.
    assert plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW).delete == []
    assert layout.checkpoints_dir(R1).stat().st_mtime == pytest.approx(NOW - 1 * DAY)


# ------------------------------------------------------------------------------------------ protections


def test_best_checkpoint_from_trainer_state_is_kept_even_without_run_json(layout):
    for step, age in [(10, 10), (20, 9), (30, 8), (40, 8)]:
        add_checkpoint(layout, R1, step, age, best_step=10 if step == 40 else 30)  # newest says best is 10
    settle_run(layout, R1)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    kept = {c.path.name: c for c in plan.keep}
    assert "best checkpoint (checkpoint-40/trainer_state.json)" in kept["checkpoint-10"].protected_by
    assert names(plan.delete) == {"checkpoint-20", "checkpoint-30"}  # an older state's best does not count


def test_latest_complete_checkpoints_are_kept_when_the_newest_save_was_cut_off(layout):
    for step, age in [(10, 10), (20, 9), (30, 8)]:
        add_checkpoint(layout, R1, step, age)
    add_checkpoint(layout, R1, 40, 8, complete=False)  # crashed mid-save: no trainer_state.json
    write_record(layout, R1)
    settle_run(layout, R1)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    assert names(plan.keep) >= {"checkpoint-40", "checkpoint-30"}  # newest by step, and newest resumable
    assert names(plan.delete) == {"checkpoint-10", "checkpoint-20"}


def test_keep_latest_zero_still_keeps_the_best(layout):
    standard_run(layout, best=40)
    plan = plan_cleanup(layout, days=0, prune_size=None, keep_latest=0, now=NOW)
    assert names(plan.keep) == {"checkpoint-40", R1}
    assert names(plan.delete) == {"checkpoint-10", "checkpoint-20", "checkpoint-30", "checkpoint-50"}


def test_running_run_is_never_touched(layout, tmp_path):
    standard_run(layout, status="running", best=20)
    add_package(layout, R1, age=30)
    settle_run(layout, R1, age=30)
    before = snapshot(tmp_path)
    plan = plan_cleanup(layout, days=1, prune_size=0, keep_latest=0, now=NOW)
    assert plan.delete == []
    assert all(any("running" in p for p in c.protected_by) for c in plan.keep)
    apply_plan(plan)
    assert snapshot(tmp_path) == before


def test_unreadable_run_json_keeps_the_whole_run(layout):
    standard_run(layout)
    (layout.run_dir(R1) / "run.json").write_text("{torn")
    plan = plan_cleanup(layout, days=1, prune_size=None, keep_latest=0, now=NOW)
    assert plan.delete == [] and any("run.json" in w for w in plan.warnings)


def test_deployed_rollback_and_recent_history_releases_are_kept(layout, tmp_path):
    runs = ["a_20260101_000000", "b_20260101_000000", "c_20260101_000000", "d_20260101_000000",
            "e_20260101_000000"]
    for run_id in runs:
        add_release(layout, run_id, age=30)
        add_package(layout, run_id, age=30)
    # a, b, c, d deployed in turn, then rolled back to c: current c, stack [a, b, c] -> rollback target b;
    # the last two in history are c and d.
    write_deploys(layout, [("deploy", runs[0]), ("deploy", runs[1]), ("deploy", runs[2]), ("deploy", runs[3]),
                           ("rollback", runs[2])])
    before = snapshot(tmp_path)
    plan = plan_cleanup(layout, days=7, prune_size=1, now=NOW)
    apply_plan(plan)

    kept = {(c.kind, c.run_id): c for c in plan.keep}
    assert "deployed (current_model)" in kept[("release", runs[2])].protected_by
    assert "rollback target" in kept[("release", runs[1])].protected_by
    assert "one of the last 2 releases in deploy history" in kept[("release", runs[3])].protected_by
    assert {(c.kind, c.run_id) for c in plan.delete} == {("release", runs[0]), ("package", runs[0]),
                                                         ("release", runs[4]), ("package", runs[4])}
    for run_id in runs[1:4]:
        assert intact(tmp_path, before, layout.deploy_dir / "releases" / run_id)
        assert intact(tmp_path, before, layout.package_path(run_id))
    assert (layout.deploy_dir / "current_model" / "model.safetensors").read_bytes() == b"r" * 30


def test_unreadable_deploy_state_keeps_every_release_and_package(layout):
    add_release(layout, R1, age=30)
    add_package(layout, R1, age=30)
    (layout.deploy_dir / "current_model").write_text("not a symlink")
    plan = plan_cleanup(layout, days=7, prune_size=None, now=NOW)
    assert plan.delete == [] and len(plan.keep) == 2 and plan.warnings
    assert all("deploy state unreadable" in c.why for c in plan.keep)


def test_recent_manifest_protects_what_it_names_and_an_old_one_does_not(layout):
    ckpts = standard_run(layout, best=50)
    add_manifest(layout, R1, age=2, checkpoint=str(ckpts[0]))  # young: protects checkpoint-10
    standard_run(layout, R2, best=50)
    add_manifest(layout, R2, age=9, checkpoint=str(layout.checkpoints_dir(R2) / "checkpoint-10"))  # old
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=2, now=NOW)
    kept = {(c.run_id, c.path.name): c for c in plan.keep}
    assert any("recent manifest" in p for p in kept[(R1, "checkpoint-10")].protected_by)
    assert (R2, "checkpoint-10") in {(c.run_id, c.path.name) for c in plan.delete}
    # Without a window every manifest counts.
    plan = plan_cleanup(layout, days=None, prune_size=0, keep_latest=2, now=NOW)
    assert (R2, "checkpoint-10") in {(c.run_id, c.path.name) for c in plan.keep}


# ------------------------------------------------------------------------------------------ size


def test_size_pruning_deletes_large_checkpoints_whatever_their_age(layout):
    sizes = {10: 5000, 20: 10, 30: 5000, 40: 5000, 50: 5000, 60: 5000}
    for step, size in sizes.items():
        add_checkpoint(layout, R1, step, age=(70 - step) / 100, size=size, best_step=30)  # all under a day
    write_record(layout, R1, best_step=30)
    add_package(layout, R1, age=0.1, size=9000)  # packages are pruned by age only
    settle_run(layout, R1)

    plan = plan_cleanup(layout, days=7, prune_size=parse_size("+2K"), keep_latest=2, now=NOW)

    assert names(plan.delete) == {"checkpoint-10", "checkpoint-40"}
    assert all(c.reasons == ["larger than 2.0 KiB"] for c in plan.delete)
    kept = {c.path.name: c for c in plan.keep}
    assert kept["checkpoint-20"].why == "modified within 7 days; not larger than 2.0 KiB"
    assert kept["checkpoint-30"].why.startswith("best checkpoint (run.json)")
    assert "latest 2" in kept["checkpoint-60"].why and "otherwise: larger than 2.0 KiB" in kept["checkpoint-60"].why
    assert kept[f"{R1}.tar.gz"].why == "modified within 7 days"
    assert plan_cleanup(layout, days=None, prune_size=0, now=NOW).keep[-1].why == "pruned by --days only"
    # Both rules at once: old OR large.
    add_checkpoint(layout, R2, 10, age=9, size=10)
    add_checkpoint(layout, R2, 20, age=9, size=5000)
    add_checkpoint(layout, R2, 30, age=0, size=10)
    settle_run(layout, R2)
    plan = plan_cleanup(layout, days=7, prune_size=parse_size("2K"), keep_latest=1, now=NOW)
    got = {c.path.name: c.reasons for c in plan.delete if c.run_id == R2}
    assert got == {"checkpoint-10": ["older than 7 days"],
                   "checkpoint-20": ["older than 7 days", "larger than 2.0 KiB"]}


def test_size_reason_reads_in_gib(layout):
    add_checkpoint(layout, R1, 10, 0, size=10)
    add_checkpoint(layout, R1, 20, 0, size=10)
    settle_run(layout, R1)
    plan = plan_cleanup(layout, days=None, prune_size=parse_size("+2G"), keep_latest=1, now=NOW)
    kept = {c.path.name: c for c in plan.keep}
    assert kept["checkpoint-10"].why == "not larger than 2.0 GiB"
    assert "--prune-size" not in format_plan(plan) and "larger than 2.0 GiB" in format_plan(plan)


def test_old_run_scratch_folder_goes_whole_unless_it_holds_a_kept_checkpoint(layout, tmp_path):
    for step in (10, 20):
        add_checkpoint(layout, R1, step, 20)
    (layout.scratch / "runs" / R1 / "logs").mkdir()
    (layout.scratch / "runs" / R1 / "logs" / "events").write_bytes(b"e" * 11)
    set_age(layout.scratch / "runs" / R1 / "logs" / "events", 20)
    write_record(layout, R1)
    settle_run(layout, R1, age=20)
    for step, age in [(10, 10), (20, 9), (30, 8)]:
        add_checkpoint(layout, R2, step, age)
    write_record(layout, R2, best_step=20)
    settle_run(layout, R2)
    before = snapshot(tmp_path)

    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=0, now=NOW)

    [run] = [c for c in plan.delete if c.kind == "run"]
    states = sum(len((layout.checkpoints_dir(R1) / f"checkpoint-{s}" / "trainer_state.json").read_bytes())
                 for s in (10, 20))
    assert run.run_id == R1 and run.size_bytes == 2 * (100 + 7) + 11 + states
    assert run.reasons == ["older than 7 days"] and "whole scratch folder, 2 checkpoints" in run.why
    assert not [c for c in plan.delete + plan.keep if c.kind == "checkpoint" and c.run_id == R1]
    [r2] = [c for c in plan.keep if c.kind == "run"]
    assert r2.run_id == R2 and r2.protected_by == ["holds kept checkpoint-20"]
    assert {c.path.name for c in plan.delete if c.run_id == R2} == {"checkpoint-10", "checkpoint-30"}

    apply_plan(plan)
    assert not (layout.scratch / "runs" / R1).exists()
    assert intact(tmp_path, before, layout.run_dir(R1))  # the durable run folder is never a candidate
    assert intact(tmp_path, before, layout.checkpoints_dir(R2) / "checkpoint-20")


# ------------------------------------------------------------------------------------------ apply safety


def test_archive_runs_before_the_rename_and_a_failure_skips_the_deletion(layout):
    standard_run(layout, best=50)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    assert names(plan.delete) == {"checkpoint-10", "checkpoint-20", "checkpoint-30"}
    seen = []

    def archive(path: Path) -> None:
        assert (path / "model.safetensors").is_file()  # still in place while archived
        seen.append(path.name)
        if path.name == "checkpoint-20":
            raise ConnectionError("s3 unreachable")

    result = apply_plan(plan, archive=archive)
    assert sorted(seen) == ["checkpoint-10", "checkpoint-20", "checkpoint-30"]
    [(skipped, why)] = result["skipped"]
    assert skipped.path.name == "checkpoint-20" and "archive failed" in why and "s3 unreachable" in why
    assert (layout.checkpoints_dir(R1) / "checkpoint-20" / "model.safetensors").is_file()
    assert names(result["deleted"]) == {"checkpoint-10", "checkpoint-30"}
    assert result["freed_bytes"] == sum(c.size_bytes for c in result["deleted"])


def test_crash_between_rename_and_rmtree_leaves_no_half_checkpoint_and_is_cleaned_next_time(layout, monkeypatch):
    standard_run(layout, best=50)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    real_purge = apply_mod._purge

    def crash(path):
        raise OSError("power cut")

    monkeypatch.setattr(apply_mod, "_purge", crash)
    result = apply_plan(plan)
    assert len(result["errors"]) == 3 and names(result["deleted"]) == names(plan.delete)
    ckpt_dir = layout.checkpoints_dir(R1)
    assert sorted(p.name for p in ckpt_dir.glob("checkpoint-*")) == ["checkpoint-40", "checkpoint-50"]
    leftovers = sorted(ckpt_dir.glob(".deleting-*"))
    assert len(leftovers) == 3 and all((p / "model.safetensors").is_file() for p in leftovers)  # whole, hidden

    monkeypatch.setattr(apply_mod, "_purge", real_purge)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    assert sorted(plan.leftovers) == leftovers and "interrupted cleanup" in format_plan(plan)
    result = apply_plan(plan)
    assert sorted(result["leftovers_cleaned"]) == leftovers and not list(ckpt_dir.glob(".deleting-*"))
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["checkpoint-40", "checkpoint-50"]


def test_changes_between_plan_and_apply_are_respected(layout, tmp_path):
    standard_run(layout, best=50)
    add_release(layout, R2, age=30)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    assert names(plan.delete) == {"checkpoint-10", "checkpoint-20", "checkpoint-30", R2}
    write_record(layout, R1, status="running", best_step=50)  # the run resumed meanwhile
    write_deploys(layout, [("deploy", R2)])  # and R2 got deployed
    before = snapshot(tmp_path)

    result = apply_plan(plan)
    assert result["deleted"] == [] and len(result["skipped"]) == 4
    assert all("no longer prunable" in why for _, why in result["skipped"])
    assert snapshot(tmp_path) == before


def test_a_file_written_into_a_checkpoint_after_the_plan_keeps_it(layout):
    standard_run(layout, best=50)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW - 1)
    (layout.checkpoints_dir(R1) / "checkpoint-10" / "new.bin").write_bytes(b"n")
    result = apply_plan(plan)
    assert [c.path.name for c, _ in result["skipped"]] == ["checkpoint-10"]
    assert (layout.checkpoints_dir(R1) / "checkpoint-10" / "model.safetensors").is_file()


# ------------------------------------------------------------------------------------------ property


def build_history(root: Path, rng: random.Random):
    """A random storage tree; returns (layout, settings, truth) where truth says what must be kept."""
    layout = make_layout(root)
    days = rng.choice([None, 1, 3, 7, 14])
    prune = rng.choice([None, 60, 150, 400])
    if days is None and prune is None:
        days = 7
    keep_latest = rng.choice([0, 1, 2, 3])
    young = (lambda age: True) if days is None else (lambda age: age < days)
    old = (lambda age: False) if days is None else (lambda age: age > days)
    protected: dict[Path, str] = {}
    expect_gone: set[Path] = set()
    run_ids = [f"run{k}_202601{k + 1:02d}_000000" for k in range(rng.randint(1, 6))]
    released = []
    for run_id in run_ids:
        steps = sorted(rng.sample(range(1, 40), rng.randint(0, 6)))
        steps = [s * 10 for s in steps]
        ages = {s: rng.uniform(0, 20) for s in steps}
        complete = {s: rng.random() < 0.85 for s in steps}
        state_best = rng.choice(steps) if steps else None
        for s in steps:
            add_checkpoint(layout, run_id, s, ages[s], size=rng.choice([10, 100, 300, 1000]),
                           best_step=state_best, complete=complete[s], optimizer=False)
        extra_age = rng.uniform(0, 25)
        logs = layout.scratch / "runs" / run_id / "logs"
        logs.mkdir(parents=True)
        (logs / "events").write_bytes(b"e" * rng.randint(0, 50))
        set_age(logs / "events", extra_age)
        (layout.checkpoints_dir(run_id)).mkdir(parents=True, exist_ok=True)
        settle_run(layout, run_id)
        run_age = min([extra_age, *ages.values()])

        status = rng.choice(["complete", "complete", "complete", "running", "failed", None])
        record_best = rng.choice(steps + [None]) if steps else None
        if status is not None:
            write_record(layout, run_id, status=status, best_step=record_best, final=False)
        # ---- the oracle
        ckpt = {s: layout.checkpoints_dir(run_id) / f"checkpoint-{s}" for s in steps}
        keep = set()
        if status == "running":
            keep |= set(steps)
        if status is not None and record_best is not None:
            keep.add(record_best)
        newest_complete = [s for s in steps if complete[s]]
        if newest_complete and state_best is not None:
            keep.add(state_best)
        if keep_latest:
            keep |= set(steps[-keep_latest:]) | set(newest_complete[-keep_latest:])
        if rng.random() < 0.5:
            m_age = rng.uniform(0, 20)
            target = rng.choice(steps) if steps and rng.random() < 0.6 else None
            add_manifest(layout, run_id, m_age, str(ckpt[target]) if target is not None
                         else str(layout.run_dir(run_id) / "final"))
            if target is not None and young(m_age):
                keep.add(target)
        size = {s: sum(f.stat().st_size for f in ckpt[s].iterdir()) for s in steps}
        doomed = {s for s in steps if s not in keep and (old(ages[s]) or (prune is not None and size[s] > prune))}
        for s in keep:
            protected[ckpt[s]] = "checkpoint"
        if old(run_age) and not keep and status != "running" and doomed == set(steps):
            expect_gone.add(layout.scratch / "runs" / run_id)
        else:
            expect_gone |= {ckpt[s] for s in doomed}
        if rng.random() < 0.6:
            add_package(layout, run_id, age=rng.uniform(0, 20), size=rng.choice([10, 1000]))
        if rng.random() < 0.75:
            add_release(layout, run_id, age=rng.uniform(0, 20))
            released.append(run_id)
        if status == "running":
            protected[layout.scratch / "runs" / run_id] = "running"
            for p in (layout.package_path(run_id), layout.deploy_dir / "releases" / run_id):
                if p.exists():
                    protected[p] = "running"

    deployed: set[str] = set()
    if released and rng.random() < 0.8:
        records, stack = [], []
        for _ in range(rng.randint(1, 8)):
            if len(stack) >= 2 and rng.random() < 0.4:
                stack.pop()
                records.append(("rollback", stack[-1]))
            else:
                run_id = rng.choice(released)
                if not stack or stack[-1] != run_id:
                    stack.append(run_id)
                records.append(("deploy", run_id))
        write_deploys(layout, records)
        deployed = {records[-1][1], *stack[-2:]}
        recent = []
        for _, run_id in reversed(records):
            if run_id not in recent:
                recent.append(run_id)
        deployed |= set(recent[:2])
        for run_id in deployed:
            for p in (layout.package_path(run_id), layout.deploy_dir / "releases" / run_id):
                if p.exists():
                    protected[p] = "deployed"
    for run_id in run_ids:
        for p in (layout.package_path(run_id), layout.deploy_dir / "releases" / run_id):
            if p.exists() and p not in protected:
                age = (NOW - max(q.stat().st_mtime for q in [p, *p.rglob("*")])) / DAY
                if old(age):
                    expect_gone.add(p)
    return layout, dict(days=days, prune_size=prune, keep_latest=keep_latest), protected, expect_gone


@pytest.mark.parametrize("chunk", range(4))
def test_random_histories_never_lose_a_protected_item(tmp_path, chunk):
    for i in range(chunk * 50, chunk * 50 + 50):
        root = tmp_path / f"h{i}"
        layout, settings, protected, expect_gone = build_history(root, random.Random(i))
        before = snapshot(root)

        plan = plan_cleanup(layout, now=NOW, **settings)
        planned = {c.path for c in plan.delete}
        assert planned == expect_gone, (i, settings, sorted(map(str, planned ^ expect_gone)))
        assert not planned & set(protected), i
        result = apply_plan(plan)
        assert result["skipped"] == [] and result["errors"] == [], i

        after = snapshot(root)
        for path in protected:  # still there, every file of it, unchanged
            assert path.exists() and files_under(after, root, path) == files_under(before, root, path), \
                (i, path, protected[path])
        for cand in plan.delete:
            assert not os.path.lexists(cand.path), (i, cand.path)
        survivors = {k: v for k, v in before.items()
                     if not any(k.startswith(os.path.relpath(p, root) + os.sep) or k == os.path.relpath(p, root)
                                for p in planned)}
        after.pop(os.path.join("durable", "deploy", ".lock"), None)  # deploy's lock, taken to delete a release
        assert after == survivors, i  # nothing outside the plan changed
        assert not list(root.rglob(".deleting-*")), i
        shutil.rmtree(root)  # 200 trees of small files: keep pytest's own tmp cleanup cheap
