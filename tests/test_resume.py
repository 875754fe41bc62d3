"""A training run killed mid-way resumes from its last checkpoint and ends exactly where an uninterrupted run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, nexa, write_recipe
from tests.conftest import tiny_recipe

pytestmark = pytest.mark.slow
RUN_ID = "tiny_20260101_000000"


def _start_training(config: Path) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-m", "nexa_core.cli.main", "train", "--config", str(config), "--run-id", RUN_ID],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "training ended before the checkpoint to kill at"
        assert time.time() < deadline, f"no {path} after {timeout}s"
        time.sleep(0.02)


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tiny_model, tiny_csv, tmp_path):
    straight = tiny_recipe(tiny_model, tiny_csv, tmp_path / "straight", epochs=4)
    killed = tiny_recipe(tiny_model, tiny_csv, tmp_path / "killed", epochs=4)
    nexa("train", "--config", str(write_recipe(straight, tmp_path / "straight.yaml")), "--run-id", RUN_ID)

    config = write_recipe(killed, tmp_path / "killed.yaml")
    proc = _start_training(config)
    checkpoints = tmp_path / "killed/scratch/runs" / RUN_ID / "checkpoints"
    _wait_for(checkpoints / "checkpoint-20" / "trainer_state.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed/durable/runs" / RUN_ID / "final").exists()

    out = nexa("train", "--config", str(config), "--run-id", RUN_ID).stdout
    assert f"resuming run {RUN_ID}" in out
    record = json.loads((tmp_path / "killed/durable/runs" / RUN_ID / "run.json").read_text())
    assert record["status"] == "complete" and record["train"]["resumed_from"].endswith("checkpoint-20")

    def metrics(root):
        return json.loads((root / "durable/runs" / RUN_ID / "metrics.json").read_text())

    a, b = metrics(tmp_path / "straight"), metrics(tmp_path / "killed")
    assert (a["accuracy"], a["macro_f1"], a["loss"]) == (b["accuracy"], b["macro_f1"], b["loss"])
    weights = [(root / "durable/runs" / RUN_ID / "final/model.safetensors").read_bytes()
               for root in (tmp_path / "straight", tmp_path / "killed")]
    assert weights[0] == weights[1]
