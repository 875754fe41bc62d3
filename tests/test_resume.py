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


def test_resumed_run_continues_the_ema_saved_in_the_checkpoint(tiny_model, tiny_csv, tmp_path):
    import shutil

    from nexa_core.common.layout import Layout
    from nexa_core.config import validate_config
    from nexa_core.data import dataset_for
    from nexa_core.training.steps import train_run

    cfg = validate_config(tiny_recipe(tiny_model, tiny_csv, tmp_path, epochs=2, checkpoint={"every_steps": 5, "keep": 10}))
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    straight = train_run(cfg, dataset.path, RUN_ID, layout)
    log_path = Path(straight.log_path)
    straight_log = [json.loads(line) for line in log_path.read_text().splitlines()]

    # Undo everything past checkpoint-10, and the log too: the EMA can only come from the checkpoint.
    ckpts = layout.checkpoints_dir(RUN_ID)
    for ckpt in ckpts.glob("checkpoint-*"):
        if int(ckpt.name.rsplit("-", 1)[-1]) > 10:
            shutil.rmtree(ckpt)
    shutil.rmtree(straight.final_dir)
    saved = json.loads((ckpts / "checkpoint-10" / "trainer_state.json").read_text())["stateful_callbacks"]
    assert saved["SmoothedLossLog"]["attributes"]["ema"] is not None
    log_path.unlink()

    resumed = train_run(cfg, dataset.path, RUN_ID, layout)
    assert resumed.resumed_from.endswith("checkpoint-10")
    resumed_log = [json.loads(line) for line in log_path.read_text().splitlines()]
    first = next(r for r in resumed_log if "loss" in r)
    same_step = next(r for r in straight_log if "loss" in r and r["step"] == first["step"])
    assert first["step"] > 10 and first["loss"] == pytest.approx(same_step["loss"])
    assert first["loss_ema"] != pytest.approx(first["loss"])  # not restarted from this step's loss
    assert first["loss_ema"] == pytest.approx(same_step["loss_ema"])
    # The resumed log holds the same records, field for field, as the uninterrupted one past step 10.
    assert [sorted(r) for r in resumed_log] == [sorted(r) for r in straight_log if r["step"] > 10]
    later = [r["loss_ema"] for r in resumed_log if "loss" in r]
    assert later == pytest.approx([r["loss_ema"] for r in straight_log if "loss" in r and r["step"] > 10])
