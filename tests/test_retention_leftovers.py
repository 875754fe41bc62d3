"""Crash leftovers in `nexa cleanup`: what killed packagings, deploys and trainings leave is listed by the dry run,
removed by --apply once no live process holds it, and never touched while one does.

The packaging, deploy and training processes are real subprocesses, paused at the step where a kill leaves the
leftover behind and then SIGKILLed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nexa_core.common.layout import Layout
from nexa_core.common.locks import FileLock
from nexa_core.release.deploy import current_release, history
from nexa_core.release.packaging import build_package
from nexa_core.retention import apply_plan, format_plan, plan_cleanup
from tests.cli_helpers import nexa
from tests.retention_builders import NOW, R1, add_checkpoint, intact, make_layout, names, set_age, settle_run, snapshot

REPO_ROOT = Path(__file__).resolve().parents[1]
_LAYOUT = """
import os, sys, time
from pathlib import Path
from nexa_core.common.layout import Layout
root = Path(sys.argv[1])
layout = Layout(root / "scratch", root / "durable", root / "shared")
def pause(*_, **__):
    print("ready", flush=True)
    time.sleep(600)
"""
# Each pauses where a kill leaves its leftover: after the temp package is written (before its rename), after
# the package is extracted into its unpack folder, after the new current_model link is made.
PACKAGE = _LAYOUT + """
from nexa_core.release import packaging
packaging._verify_archive = pause
packaging.build_package(layout, sys.argv[2])
"""
UNPACK = _LAYOUT + """
from nexa_core.release import deploy, packaging
packaging.verify_unpacked = pause
deploy.deploy(layout, sys.argv[2])
"""
SWAP = _LAYOUT + """
from nexa_core.release import deploy
real = os.replace
os.replace = lambda src, dst: pause() if Path(dst).name == "current_model" else real(src, dst)
deploy.deploy(layout, sys.argv[2])
"""
HOLD_RUN = _LAYOUT + """
from nexa_core.common.locks import FileLock
FileLock(layout.run_dir(sys.argv[2]) / "run.lock").acquire()
pause()
"""


@pytest.fixture
def layout(tmp_path) -> Layout:
    return make_layout(tmp_path)


def _finished_run(layout: Layout, run_id: str = R1) -> None:
    """What packaging needs of a finished run, as small plain files."""
    run_dir = layout.run_dir(run_id)
    (run_dir / "final").mkdir(parents=True)
    (run_dir / "final" / "model.safetensors").write_bytes(os.urandom(4096))
    (run_dir / "final" / "config.json").write_text("{}")
    (run_dir / "config.yaml").write_text("run:\n  name: alpha\n")
    (run_dir / "metrics.json").write_text('{"eval_accuracy": 0.9}')
    layout.manifest_path(run_id).parent.mkdir(parents=True, exist_ok=True)
    layout.manifest_path(run_id).write_text(json.dumps({"run_id": run_id}))
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "status": "complete"}))


def _paused(script: str, tmp_path: Path, run_id: str = R1) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), run_id], cwd=REPO_ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"the process did not reach its pause: {line!r} {proc.stderr.read()[-2000:]}")
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def _leftover(plan, action: str) -> list:
    return [c for c in getattr(plan, action) if c.kind == "leftover"]


def _check_kept_while_alive_then_removed(layout, tmp_path, proc, path: Path, reason: str) -> None:
    set_age(path, 2)  # old enough: only the live writer protects it now
    plan = plan_cleanup(layout, days=7, prune_size=None, now=NOW)
    [kept] = _leftover(plan, "keep")
    assert kept.path == path and kept.why.startswith("in use: a live process holds it") and reason in kept.why
    before = snapshot(tmp_path)
    result = apply_plan(plan)
    assert snapshot(tmp_path) == before and result["deleted"] == []

    _kill(proc)
    plan = plan_cleanup(layout, days=7, prune_size=None, now=NOW)
    [doomed] = _leftover(plan, "delete")
    assert doomed.path == path and doomed.why == reason and reason in format_plan(plan)
    assert snapshot(tmp_path) == before  # the dry run changed nothing
    result = apply_plan(plan)
    assert [c.path for c in result["deleted"]] == [path] and not os.path.lexists(path)


def test_a_killed_packaging_leaves_a_temp_package_that_cleanup_removes_once_its_writer_is_gone(layout, tmp_path):
    _finished_run(layout)
    proc = _paused(PACKAGE, tmp_path)
    try:
        [tmp] = list(layout.packages_dir.iterdir())
        assert tmp.name.startswith(f".{R1}.tar.gz.") and tmp.name.endswith(".tmp") and tmp.stat().st_size > 0
        _check_kept_while_alive_then_removed(layout, tmp_path, proc, tmp,
                                             "temporary package of an interrupted `nexa package`")
    finally:
        proc.kill()
    assert list(layout.packages_dir.iterdir()) == []


def test_a_killed_deploy_leaves_an_unpack_folder_that_cleanup_removes_once_its_writer_is_gone(layout, tmp_path):
    _finished_run(layout)
    build_package(layout, R1)
    proc = _paused(UNPACK, tmp_path)
    try:
        [tmp] = list((layout.deploy_dir / "releases").iterdir())
        assert tmp.name.startswith(f".{R1}.") and tmp.name.endswith(".unpack") and (tmp / "model").is_dir()
        _check_kept_while_alive_then_removed(layout, tmp_path, proc, tmp, "unpack folder of an interrupted deploy")
    finally:
        proc.kill()
    assert list((layout.deploy_dir / "releases").iterdir()) == [] and layout.package_path(R1).is_file()


def test_a_deploy_killed_before_its_swap_leaves_a_link_that_cleanup_removes(layout, tmp_path):
    _finished_run(layout)
    build_package(layout, R1)
    proc = _paused(SWAP, tmp_path)
    try:
        [tmp] = [p for p in layout.deploy_dir.iterdir() if p.name.startswith(".current_model.")]
        assert tmp.is_symlink()
        _check_kept_while_alive_then_removed(layout, tmp_path, proc, tmp,
                                             "new current_model link of an interrupted deploy")
    finally:
        proc.kill()
    assert current_release(layout) is None and history(layout) == []  # its history record never took effect
    assert sorted(os.listdir(layout.deploy_dir)) == [".lock", "history.jsonl", "releases"]


@pytest.mark.parametrize("folder", ["packages", "releases"])
def test_a_fresh_leftover_waits_out_the_grace_whatever_days_says(layout, folder):
    parent = layout.packages_dir if folder == "packages" else layout.deploy_dir / "releases"
    parent.mkdir(parents=True)
    if folder == "packages":  # the names the code writes, with no process holding them
        fd, name = tempfile.mkstemp(dir=parent, prefix=f".{R1}.tar.gz.", suffix=".tmp")
        os.close(fd)
    else:
        name = tempfile.mkdtemp(dir=parent, prefix=f".{R1}.", suffix=".unpack")
    path = Path(name)
    plan = plan_cleanup(layout, days=0, prune_size=None, now=NOW + 60)
    [kept] = _leftover(plan, "keep")
    assert kept.path == path and "modified within 1.0h: it may still be being written" in kept.why
    plan = plan_cleanup(layout, days=None, prune_size=10**12, now=NOW + 2 * 3600)  # no --days: still a leftover
    assert [c.path for c in _leftover(plan, "delete")] == [path]
    archived = []
    apply_plan(plan, archive=archived.append)
    assert not path.exists() and archived == []  # crash debris is not copied to durable storage


def test_lookalike_names_are_not_leftovers(layout):
    layout.packages_dir.mkdir(parents=True)
    for name in (".notarun.tar.gz.abcdefgh.tmp", f".{R1}.tar.gz.abcdefgh.tmp.keep", "x.tmp"):
        (layout.packages_dir / name).write_bytes(b"x")
        set_age(layout.packages_dir / name, 30)
    plan = plan_cleanup(layout, days=0, prune_size=None, now=NOW)
    assert plan.delete == plan.keep == []


# ------------------------------------------------------------------------------------ interrupted runs


def _unfinished_run(layout: Layout, status: str = "running", *, final: bool = False, age: float = 30) -> Path:
    for step, ckpt_age in ((10, age + 2), (20, age + 1), (30, age)):
        add_checkpoint(layout, R1, step, ckpt_age, best_step=20)
    settle_run(layout, R1)
    run_dir = layout.run_dir(R1)
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": R1, "status": status, "key": "k"}))
    (run_dir / "config.yaml").write_text("run: {}\n")
    if final:
        (run_dir / "final").mkdir()
        (run_dir / "final" / "model.safetensors").write_bytes(b"f")
    set_age(run_dir, age)
    return run_dir


def test_a_run_is_kept_while_its_process_lives_then_resumable_then_removed_when_abandoned(layout, tmp_path):
    run_dir = _unfinished_run(layout)
    scratch = layout.scratch / "runs" / R1
    proc = _paused(HOLD_RUN, tmp_path)
    try:
        set_age(run_dir, 30)  # taking the lock touched the folder
        plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=0, now=NOW)
        assert plan.delete == [] and all(f"run is running (pid {proc.pid}" in c.why for c in plan.keep)
    finally:
        _kill(proc)
    assert (run_dir / "run.lock").exists()  # what SIGKILL leaves: the file, with no live holder

    plan = plan_cleanup(layout, days=60, prune_size=None, keep_latest=0, now=NOW)  # interrupted 30 days ago
    assert plan.delete == [] and all("interrupted run (no live process holds its run.lock): kept so it can resume"
                                     in c.why for c in plan.keep)

    before = snapshot(tmp_path)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=2, now=NOW)
    assert {(c.kind, c.path) for c in plan.delete} == {("run", scratch), ("leftover", run_dir)}
    assert plan.keep == []  # its best and latest checkpoints are not kept for an abandoned run
    table = format_plan(plan)
    assert "whole scratch folder of an interrupted run abandoned" in table
    assert "half-written run folder of an interrupted run abandoned" in table
    assert snapshot(tmp_path) == before
    result = apply_plan(plan)
    assert len(result["deleted"]) == 2 and not scratch.exists() and not run_dir.exists()
    assert list(layout.runs_dir.iterdir()) == [] and plan_cleanup(layout, days=7, prune_size=None).leftovers == []


def test_an_interrupted_run_changed_within_the_window_stays_resumable(layout):
    run_dir = _unfinished_run(layout)
    (run_dir / "run.json").touch()  # e.g. the record written when it last resumed
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=0, now=NOW)
    assert plan.delete == [] and names(plan.keep) == {"checkpoint-10", "checkpoint-20", "checkpoint-30", R1}
    assert all("kept so it can resume until nothing in it changed for 7 days" in c.why for c in plan.keep)
    plan = plan_cleanup(layout, days=None, prune_size=0, keep_latest=0, now=NOW)  # no window: never abandoned
    assert plan.delete == [] and all("kept so it can resume" in c.why for c in plan.keep)


def test_an_abandoned_run_with_a_final_model_keeps_its_run_folder(layout, tmp_path):
    run_dir = _unfinished_run(layout, final=True)
    before = snapshot(tmp_path)
    plan = plan_cleanup(layout, days=7, prune_size=None, now=NOW)
    assert [(c.kind, c.path.name) for c in plan.delete] == [("run", R1)]
    assert any(f"run {R1} was interrupted after writing final/" in w for w in plan.warnings)
    apply_plan(plan)
    assert intact(tmp_path, before, run_dir) and not (layout.scratch / "runs" / R1).exists()


def test_a_claimed_run_of_a_dead_process_goes_with_no_scratch_folder(layout):
    run_dir = layout.run_dir(R1)
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": R1, "status": "claimed"}))
    (run_dir / "run.lock").write_text("{}")
    set_age(run_dir, 10)
    plan = plan_cleanup(layout, days=7, prune_size=None, now=NOW)
    assert [(c.kind, c.path) for c in plan.delete] == [("leftover", run_dir)]
    apply_plan(plan)
    assert not run_dir.exists()


def test_failed_runs_go_by_age_like_any_other(layout, tmp_path):
    run_dir = _unfinished_run(layout, status="failed")
    before = snapshot(tmp_path)
    plan = plan_cleanup(layout, days=7, prune_size=None, keep_latest=1, now=NOW)
    assert names(plan.delete) == {"checkpoint-10"}  # checkpoint-20 is its best, checkpoint-30 its latest
    assert names(plan.keep) == {"checkpoint-20", "checkpoint-30", R1}
    apply_plan(plan)
    assert intact(tmp_path, before, run_dir)  # a failed run's record stays: it says why it failed


def test_a_run_resumed_between_plan_and_apply_is_left_alone(layout, tmp_path):
    run_dir = _unfinished_run(layout)
    plan = plan_cleanup(layout, days=7, prune_size=None, now=NOW)
    assert len(plan.delete) == 2
    lock = FileLock(run_dir / "run.lock")
    assert lock.acquire(block=False)  # another process resumes it now (taking the lock writes nothing yet)
    try:
        set_age(run_dir, 30)
        before = snapshot(tmp_path)
        result = apply_plan(plan)
        assert result["deleted"] == [] and len(result["skipped"]) == 2
        assert snapshot(tmp_path) == before
    finally:
        lock.release()


def test_nexa_cleanup_lists_then_removes_crash_leftovers(layout, tmp_path):
    _unfinished_run(layout)
    layout.packages_dir.mkdir(parents=True)
    tmp = layout.packages_dir / f".{R1}.tar.gz.k3j4h5g6.tmp"
    tmp.write_bytes(b"x" * 1000)
    set_age(tmp, 1)
    env = {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared)}
    before = snapshot(tmp_path)
    out = nexa("cleanup", "--days", "7", env=env).stdout
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(str(tmp_path))}
    assert "delete" in rows[str(tmp)] and "temporary package of an interrupted `nexa package`" in rows[str(tmp)]
    assert "half-written run folder" in rows[str(layout.run_dir(R1))]
    assert "dry run" in out and snapshot(tmp_path) == before
    out = nexa("cleanup", "--days", "7", "--apply", env=env).stdout
    assert "deleted 3" in out and not tmp.exists() and not layout.run_dir(R1).exists()
