"""Retention (`cleanup --days 7 --prune-size +2G`): dry runs, deletions, protections, crash safety.

Every tree is fake: small files under tmp_path with mtimes set by os.utime relative to NOW.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import FileLock
from nexa_core.retention import apply as apply_mod
from nexa_core.retention import apply_plan, format_plan, parse_size, plan_cleanup
from tests.retention_builders import (
    DAY,
    NOW,
    R1,
    R2,
    add_checkpoint,
    add_manifest,
    add_package,
    add_release,
    intact,
    make_layout,
    names,
    set_age,
    settle_run,
    snapshot,
    standard_run,
    write_deploys,
    write_record,
)


@pytest.fixture
def layout(tmp_path) -> Layout:
    return make_layout(tmp_path)


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
    set_age(layout.run_dir(R1), 30)
    lock = FileLock(layout.run_dir(R1) / "run.lock")
    assert lock.acquire(block=False)  # the live process training it (a flock: any other open file conflicts)
    try:
        before = snapshot(tmp_path)
        plan = plan_cleanup(layout, days=1, prune_size=0, keep_latest=0, now=NOW)
        assert plan.delete == []
        assert all(any(f"running (pid {os.getpid()}" in p for p in c.protected_by) for c in plan.keep)
        apply_plan(plan)
        assert snapshot(tmp_path) == before
    finally:
        lock.release()


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
