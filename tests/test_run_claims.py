"""A run is trained by one process at a time: the claim lock, failed runs, interrupted runs and the refusals of
runs that cannot be reopened (nexa_core/training/claim.py, nexa_core/common/locks.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import FileLock, holder
from nexa_core.config import validate_config
from nexa_core.training.claim import LOCK, claim_run
from nexa_core.training.record import read_record, update_record
from tests.cli_helpers import ROOT, nexa, write_recipe

RUN = "tiny_20260101_000000"


@pytest.fixture
def cfg(recipe):
    return validate_config(recipe)


@pytest.fixture
def layout(cfg):
    return Layout.from_storage(cfg.storage)


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


# ----------------------------------------------------------------------------------------------- the lock


def _hold(path: str, ready, release) -> None:
    lock = FileLock(Path(path))
    lock.acquire()
    ready.set()
    release.wait(30)


def test_a_lock_names_its_live_holder_and_is_free_once_the_holder_is_killed(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path / "x.lock"), ready, release))
    child.start()
    assert ready.wait(30)
    assert holder(tmp_path / "x.lock") == f"pid {child.pid} on {os.uname().nodename}"
    assert not FileLock(tmp_path / "x.lock").acquire(block=False)
    os.kill(child.pid, signal.SIGKILL)  # no release: the kernel drops the flock with the process
    child.join()
    assert holder(tmp_path / "x.lock") is None
    lock = FileLock(tmp_path / "x.lock")
    assert lock.acquire(block=False)
    lock.release()
    assert not (tmp_path / "x.lock").exists()  # a lock leaves nothing behind


# --------------------------------------------------------------------------------------- claims in-process


def test_a_second_claim_of_the_same_work_starts_a_new_run_and_says_whose_run_is_busy(cfg, layout):
    with claim_run(cfg, "v1", layout) as first:
        with claim_run(cfg, "v1", layout) as second:
            assert second.run_id != first.run_id and not second.resuming
            assert f"the same work is being trained by run {first.run_id} (pid {os.getpid()}" in second.message


def test_an_interrupted_run_is_resumed_once_its_holder_is_gone(cfg, layout):
    with claim_run(cfg, "v1", layout) as first:
        update_record(first.run_dir, status="running")
    # What a kill leaves: status running, and the lock file of a holder that no longer exists.
    (first.run_dir / LOCK).write_text('{"pid": 999999, "host": "gone"}')
    with claim_run(cfg, "v1", layout) as again:
        assert (again.run_id, again.resuming) == (first.run_id, True)
        assert again.message == f"resuming interrupted run {first.run_id}"


def test_a_run_that_raised_is_marked_failed_and_never_resumed(cfg, layout):
    with pytest.raises(RuntimeError), claim_run(cfg, "v1", layout) as claim:
        update_record(claim.run_dir, status="running")
        raise RuntimeError("CUDA error: device-side assert\nlong trace")
    record = read_record(claim.run_dir)
    assert record["status"] == "failed" and record["error"] == "RuntimeError: CUDA error: device-side assert"
    with claim_run(cfg, "v1", layout) as again:
        assert again.run_id != claim.run_id and not again.resuming
    with pytest.raises(NexaError, match=r"failed \(RuntimeError: CUDA error: device-side assert\) and is not resumed"):
        with claim_run(cfg, "v1", layout, claim.run_id):
            pass


def test_a_kill_or_ctrl_c_leaves_the_run_interrupted_not_failed(cfg, layout):
    with pytest.raises(KeyboardInterrupt), claim_run(cfg, "v1", layout) as claim:
        update_record(claim.run_dir, status="running")
        raise KeyboardInterrupt
    assert read_record(claim.run_dir)["status"] == "running"
    with claim_run(cfg, "v1", layout) as again:
        assert again.run_id == claim.run_id and again.resuming


def test_a_refusal_before_training_began_leaves_nothing(cfg, layout, tmp_path):
    before = _tree(tmp_path)
    with pytest.raises(NexaError), claim_run(cfg, "v1", layout) as claim:
        (claim.run_dir / "telemetry").mkdir()
        raise NexaError("training.precision: bf16 needs a GPU")
    assert _tree(tmp_path) == before and not layout.durable.exists()


def test_a_completed_or_foreign_run_is_not_reopened_under_its_id(cfg, layout, recipe):
    with claim_run(cfg, "v1", layout, RUN) as claim:
        update_record(claim.run_dir, status="complete")
    (claim.run_dir / "config.yaml").write_text("the snapshot of the config that trained it\n")
    before = _tree(layout.durable)
    other = validate_config({**recipe, "training": {**recipe["training"], "epochs": 9}})
    with pytest.raises(NexaError, match=f"run {RUN} is complete of other work .* omit --run-id"):
        with claim_run(other, "v1", layout, RUN):
            pass
    with pytest.raises(NexaError, match=f"run {RUN} is already complete; nothing to train"):
        with claim_run(cfg, "v1", layout, RUN):
            pass
    update_record(claim.run_dir, status="running")
    before = _tree(layout.durable)
    with pytest.raises(NexaError, match=f"run {RUN} is an unfinished run of other work"):
        with claim_run(other, "v1", layout, RUN):
            pass
    assert _tree(layout.durable) == before


def test_new_runs_started_in_the_same_second_get_different_ids(cfg, layout):
    with claim_run(cfg, "v1", layout) as a, claim_run(cfg, "v2", layout) as b:
        assert a.run_id != b.run_id and a.run_dir.is_dir() and b.run_dir.is_dir()


# ------------------------------------------------------------------------------------ two real `nexa train`


def _train(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "nexa_core.cli.main", "train", "--config", str(config), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_trainings_of_the_same_work_never_share_a_run(recipe, tmp_path):
    config = write_recipe(recipe, tmp_path / "r.yaml")
    nexa("prepare", "--config", str(config))  # both then start training at the same moment
    procs = [_train(config) for _ in range(2)]
    outs = [proc.communicate(timeout=600) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    ids = [json.loads(out[out.rindex('{\n  "run_id"'):])["run_id"] for out, _ in outs]
    assert ids[0] != ids[1]
    for run_id in ids:
        record = read_record(tmp_path / "durable/runs" / run_id)
        assert record["status"] == "complete" and record["train"]["global_step"] > 0


@pytest.mark.slow
def test_a_training_of_a_busy_run_id_waits_for_its_holder(recipe, cfg, layout, tmp_path):
    config = write_recipe(recipe, tmp_path / "r.yaml")
    version = json.loads(nexa("prepare", "--config", str(config)).stdout)["version"]
    err_path = tmp_path / "stderr.txt"
    with claim_run(cfg, version, layout, RUN) as claim, open(err_path, "w") as err:
        update_record(claim.run_dir, status="running")
        proc = subprocess.Popen([sys.executable, "-m", "nexa_core.cli.main", "train", "--config", str(config),
                                 "--run-id", RUN], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"})
        deadline = time.monotonic() + 120
        while f"waiting for run {RUN}: pid {os.getpid()} on" not in err_path.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(1)
        assert proc.poll() is None  # still waiting while the lock is held
        update_record(claim.run_dir, status="failed", error="stopped by the test")
    assert proc.wait(timeout=120) == 2
    last = err_path.read_text().strip().splitlines()[-1]
    assert f"run {RUN} failed (stopped by the test) and is not resumed" in last


def test_a_folder_cleanup_is_deleting_is_never_resumed(cfg, layout):
    with claim_run(cfg, "v1", layout) as first:
        update_record(first.run_dir, status="running")
    doomed = layout.runs_dir / f".deleting-{first.run_id}-1"
    first.run_dir.rename(doomed)  # what a cleanup that crashed mid-delete leaves
    with claim_run(cfg, "v1", layout) as again:
        assert not again.resuming and again.run_id != doomed.name
