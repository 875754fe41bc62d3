"""Training across nodes: two torchrun agents ("nodes", one process each) on a c10d rendezvous on loopback, node 0
started by the Dagster asset through Pipes and node 1 by the documented node command; rank 0 alone reports."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.cli_helpers import ROOT
from tests.conftest import tiny_recipe
from tests.dagster_helpers import run_job
from tests.process_helpers import free_port, stop_group

pytestmark = pytest.mark.slow


def ddp_recipe(tiny_model, tiny_csv, root: Path, **distributed) -> dict:
    """4 steps of the tiny model; one OpenMP thread per process (the runbook's 8 would crowd two cores)."""
    recipe = tiny_recipe(tiny_model, tiny_csv, root, max_steps=4, logging_steps=1, checkpoint={"every_steps": 2, "keep": 1},
                         distributed={"env": {"OMP_NUM_THREADS": "1"}, **distributed})
    recipe["model"]["dropout"] = 0.0
    return recipe


def _start_node_when_spec_appears(runs: Path, node_rank: int, log: Path, started: list, stop: threading.Event) -> None:
    """Node 1 is started the way an operator does it: with the spec node 0 wrote into the run's folder."""
    while not stop.is_set():
        specs = list(runs.glob("*/launch.json"))
        if specs:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "nexa_core.cli.main", "train-node", "--spec", str(specs[0]),
                 "--node-rank", str(node_rank)], cwd=ROOT, start_new_session=True,
                stdout=log.open("w"), stderr=subprocess.STDOUT))
            return
        time.sleep(0.1)


def test_two_nodes_train_one_run_and_rank_0_alone_reports_through_pipes(tiny_model, tiny_csv, tmp_path):
    recipe = ddp_recipe(tiny_model, tiny_csv, tmp_path, nodes=2, nproc_per_node=1,
                        rdzv_endpoint=f"127.0.0.1:{free_port()}")
    started, stop, log = [], threading.Event(), tmp_path / "node1.log"
    watcher = threading.Thread(target=_start_node_when_spec_appears,
                               args=(tmp_path / "durable" / "runs", 1, log, started, stop), daemon=True)
    watcher.start()
    try:
        instance = dg.DagsterInstance.ephemeral()
        result = run_job("ddp_nodes", recipe, instance=instance, selection=["training_dataset", "trained_model"])
        stop.set()
        watcher.join(timeout=10)
        assert started, "node 0 never wrote the run's spec"
        assert started[0].wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        stop.set()
        for proc in started:
            stop_group(proc)
    assert result.success, result.all_events[-1]
    [materialization] = result.asset_materializations_for_node("trained_model")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["reported_by"] == "rank 0 of 2" and meta["world_size"] == 2 and meta["nodes"] == 2
    assert meta["nproc_per_node"] == 1 and meta["restarts"] == 0 and meta["global_step"] == 4
    assert f"node 1 of run {meta['run_id']}: done" in log.read_text()
    # Rank 0's step metrics reached the step's log through Pipes, each logged step once (only rank 0 sends them).
    # c10d orders the agents by host, then pid: rank 0 runs on either "node", and reports from both.
    messages = [e.user_message for e in instance.all_logs(result.run_id) if "[rank 0] step" in e.user_message]
    steps = [m.split("step ", 1)[1].split(":", 1)[0] for m in messages if '"loss"' in m]
    assert steps == ["1", "2", "3", "4"], messages


def test_teacher_and_student_train_under_torchrun_through_pipes(tiny_model, tiny_csv, tmp_path):
    """The distillation's training steps take the same path as trained_model: two processes on one node started
    through Pipes, rank 0's report in each asset's one materialization (the student with the KD loss)."""
    recipe = ddp_recipe(tiny_model, tiny_csv, tmp_path, nproc_per_node=2)
    recipe["distill"] = {"student_layers": 1, "top_k": 2, "chunk_size": 64}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("teacher_inputs", ["v1"])
    result = run_job("ddp_distill", recipe, instance=instance, partition="v1",
                     selection=["training_dataset", "teacher_model", "teacher_inputs", "teacher_outputs",
                                "distillation_pairs", "student_model"])
    assert result.success, result.all_events[-1]
    for asset in ("teacher_model", "student_model"):
        [materialization] = result.asset_materializations_for_node(asset)
        meta = {k: v.value for k, v in materialization.metadata.items()}
        assert meta["reported_by"] == "rank 0 of 2" and meta["world_size"] == 2, (asset, meta)
    student = {k: v.value for k, v in result.asset_materializations_for_node("student_model")[0].metadata.items()}
    assert student["global_step"] == 4
