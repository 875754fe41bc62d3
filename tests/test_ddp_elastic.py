"""Elastic training: a worker SIGKILLed mid-run (rank 0, which holds the asset's Dagster Pipes) is restarted by
torchrun (`max_restarts`) and the run resumes from its last complete checkpoint, ending where an uninterrupted run
of the same world size ends, with one materialization; a rank that fails past its restarts is named, with its
error, in the step's error."""

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
from tests.dagster_helpers import run_job
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


def _kill_after_checkpoint_10(root: Path, rank: int, killed: list, stop: threading.Event) -> None:
    """SIGKILL the training worker of `rank` once the run under `root` has saved checkpoint 10."""
    while not stop.is_set():
        for state in (root / "scratch" / "runs").glob("*/checkpoints/checkpoint-10/trainer_state.json"):
            run_id = state.parents[2].name
            pid = _worker_pid(root / "durable" / "runs" / run_id / "launch.json", rank)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return
        time.sleep(0.02)


def test_a_killed_worker_restarts_and_the_run_ends_like_an_uninterrupted_one(tiny_model, tiny_csv, tmp_path):
    def recipe(root: Path, restarts: int) -> dict:
        r = ddp_recipe(tiny_model, tiny_csv, root, nproc_per_node=2, max_restarts=restarts)
        # Enough steps that the kill lands between checkpoint 10 and the end.
        r["training"].update(max_steps=40, logging_steps=5, checkpoint={"every_steps": 10, "keep": 1})
        return r

    _, straight = _train(recipe(tmp_path / "straight", 0))
    # The interrupted run is the Dagster asset's, and the worker killed is rank 0: the one holding Dagster Pipes.
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_after_checkpoint_10, args=(tmp_path / "killed", 0, killed, stop), daemon=True)
    killer.start()
    try:
        result = run_job("ddp_elastic", recipe(tmp_path / "killed", 1), selection=["training_dataset", "trained_model"])
    finally:
        stop.set()
    assert killed, "the run ended before its worker could be killed"
    assert result.success
    [materialization] = result.asset_materializations_for_node("trained_model")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["reported_by"] == "rank 0 of 2" and meta["restarts"] == 1 and meta["resumed_by_restart"] is True
    run_dir = Path(meta["run_dir"])
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["torchrun_restarts"] == 1
    resumed = record["train"]
    assert resumed["resumed_from"] and int(resumed["resumed_from"].rsplit("-", 1)[-1]) >= 10
    assert resumed["global_step"] == straight.global_step == 40
    for key, value in straight.best_eval.items():
        if key in ("loss", "accuracy", "macro_f1"):
            assert resumed["best_eval"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    logs = [[json.loads(line) for line in Path(path).read_text().splitlines()]
            for path in (straight.log_path, resumed["log_path"])]
    last = [next(r for r in reversed(log) if "loss" in r) for log in logs]
    assert last[1]["step"] == last[0]["step"] == 40 and last[1]["loss"] == pytest.approx(last[0]["loss"], rel=1e-5)
    weights = [_tensors(Path(folder)) for folder in (straight.final_dir, resumed["final_dir"])]
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
