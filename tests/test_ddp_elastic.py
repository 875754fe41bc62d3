"""Elastic training: a worker SIGKILLed mid-run is restarted by torchrun (`max_restarts`) and the run resumes from
its last complete checkpoint, ending where an uninterrupted run of the same world size ends; a rank that fails
past its restarts is named, with its error, in the step's error."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.data import dataset_for
from nexa_core.training.steps import train_run
from tests.test_ddp_nodes import ddp_recipe

pytestmark = pytest.mark.slow
RUN_ID = "tiny_20260101_000000"


def _train(recipe: dict) -> tuple[Layout, object]:
    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    return layout, train_run(cfg, dataset_for(cfg, layout).path, RUN_ID, layout)


def _worker_pid(spec: Path, rank: int) -> int | None:
    """The training worker of `rank` (not its agent: torchrun gives only workers a LOCAL_RANK) running `spec`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        worker = any(e.startswith(b"LOCAL_RANK=") for e in environ)
        if worker and str(spec).encode() in cmdline and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def test_a_killed_worker_restarts_and_the_run_ends_like_an_uninterrupted_one(tiny_model, tiny_csv, tmp_path):
    def recipe(root: Path, restarts: int) -> dict:
        r = ddp_recipe(tiny_model, tiny_csv, root, nproc_per_node=2, max_restarts=restarts)
        # Enough steps that the kill lands between checkpoint 10 and the end.
        r["training"].update(max_steps=40, logging_steps=5, checkpoint={"every_steps": 10, "keep": 1})
        return r

    _, straight = _train(recipe(tmp_path / "straight", 0))
    done: list = []
    runner = threading.Thread(target=lambda: done.append(_train(recipe(tmp_path / "killed", 1))), daemon=True)
    runner.start()
    layout = Layout.from_storage(validate_config(recipe(tmp_path / "killed", 1)).storage)
    checkpoint = layout.checkpoints_dir(RUN_ID) / "checkpoint-10" / "trainer_state.json"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert runner.is_alive() and time.monotonic() < deadline, "no checkpoint-10 to kill after"
        time.sleep(0.02)
    pid = _worker_pid(layout.run_dir(RUN_ID) / "launch.json", rank=1)
    assert pid is not None and runner.is_alive(), "the run ended before its worker could be killed"
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=180)
    assert done, "the restarted run did not finish"
    _, killed = done[0]

    record = json.loads((layout.run_dir(RUN_ID) / "run.json").read_text())
    assert record["status"] == "complete" and record["torchrun_restarts"] == 1
    assert killed.resumed_from and int(killed.resumed_from.rsplit("-", 1)[-1]) >= 10
    assert killed.global_step == straight.global_step == 40
    for key, value in straight.best_eval.items():
        if key in ("loss", "accuracy", "macro_f1"):
            assert killed.best_eval[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    logs = [[json.loads(line) for line in Path(r.log_path).read_text().splitlines()] for r in (straight, killed)]
    last = [next(r for r in reversed(log) if "loss" in r) for log in logs]
    assert last[1]["step"] == last[0]["step"] == 40 and last[1]["loss"] == pytest.approx(last[0]["loss"], rel=1e-5)
    weights = [_tensors(Path(r.final_dir)) for r in (straight, killed)]
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        assert (tensor - weights[1][name]).abs().max().item() < 1e-5, name


def _tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_a_failed_rank_is_named_with_its_error_in_the_step_error(tiny_model, tiny_csv, tmp_path):
    from nexa_core.training.launch import launch
    from nexa_dagster.failures import refusals_as_failures
    from nexa_dagster.resources.torchrun_pipes import PipesTorchrunLauncher

    cfg = validate_config(ddp_recipe(tiny_model, tiny_csv, tmp_path, nproc_per_node=2))
    layout = Layout.from_storage(cfg.storage)

    @dg.asset
    @refusals_as_failures  # as on the project's assets: the NexaError's line is the step's error
    def ddp_step(context):
        launcher = PipesTorchrunLauncher(context)
        launcher.entry = "tests.ddp_failing_worker"
        launch(cfg, tmp_path, RUN_ID, layout, launcher)

    result = dg.materialize([ddp_step], raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error.message
    assert "distributed training of run tiny_20260101_000000 failed: rank 1 (node 0, local rank 1): exit code 1: " \
           "ValueError: rank one broke on purpose" in error, error
    # Every failed rank is named, the first to fail first: rank 0 was stopped by its agent afterwards.
    assert "rank 0 (node 0, local rank 0): signal SIGTERM" in error.split("rank one broke on purpose", 1)[1]
