"""The trainer: refuses precision the hardware lacks, keeps the best checkpoint, logs smoothed loss, is seeded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.data import dataset_for
from nexa_core.training.precision import precision_flags
from nexa_core.training.steps import train_run
from tests.conftest import tiny_recipe


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal path")
@pytest.mark.parametrize("precision, tf32, field", [("fp16", False, "training.precision=fp16"),
                                                    ("bf16", False, "training.precision=bf16"),
                                                    ("fp32", True, "training.tf32")])
def test_mixed_precision_is_refused_without_a_gpu(precision, tf32, field):
    with pytest.raises(NexaError, match=field):
        precision_flags(precision, tf32)
    assert precision_flags("fp32", False) == {"fp16": False, "bf16": False, "tf32": None}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_is_used_on_a_gpu_that_has_it():
    assert precision_flags("bf16", True)["bf16"] is True


def _train(recipe: dict, run_id: str):
    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    return train_run(cfg, dataset.path, run_id, layout), layout


@pytest.mark.slow
def test_checkpoint_limit_keeps_the_best_and_final_is_the_best(tiny_model, tiny_csv, tmp_path):
    # Validation accuracy saturates early and later ties do not replace the best, so rotation must spare it.
    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path, epochs=6, best_metric="accuracy",
                         checkpoint={"every_steps": 3, "keep": 1})
    result, layout = _train(recipe, "tiny_20260101_000000")
    ckpts = sorted(p.name for p in layout.checkpoints_dir("tiny_20260101_000000").glob("checkpoint-*"))
    steps_of = sorted(int(name.split("-")[1]) for name in ckpts)
    best_step = int(Path(result.best_checkpoint).name.split("-")[1])
    assert best_step in steps_of and len(steps_of) == 2
    assert best_step < result.global_step  # the best is an early one that plain rotation would have deleted
    from safetensors.torch import load_file

    best = load_file(Path(result.best_checkpoint) / "model.safetensors")
    final = load_file(Path(result.final_dir) / "model.safetensors")
    assert all(torch.equal(best[k], final[k]) for k in best)

    log = [json.loads(line) for line in Path(result.log_path).read_text().splitlines()]
    train_logs = [r for r in log if "loss" in r]
    assert train_logs[0]["loss_ema"] == train_logs[0]["loss"]
    a, b = train_logs[0], train_logs[1]
    assert b["loss_ema"] == pytest.approx(0.9 * a["loss_ema"] + 0.1 * b["loss"])
    assert any("eval_macro_f1" in r for r in log)


@pytest.mark.slow
def test_same_seed_same_model_on_cpu(tiny_model, tiny_csv, tmp_path):
    weights = []
    for name in ("a", "b"):
        result, _ = _train(tiny_recipe(tiny_model, tiny_csv, tmp_path / name, epochs=1), "tiny_20260101_000000")
        weights.append((Path(result.final_dir) / "model.safetensors").read_bytes())
    assert weights[0] == weights[1]


@pytest.mark.slow
def test_world_size_two_launches_torchrun_workers_on_cpu(tiny_model, tiny_csv, tmp_path):
    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path, epochs=1, distributed={"world_size": 2, "seed": 42})
    recipe["tracking"] = {"mlflow": {"enabled": True, "log_model": False}}  # the embedded store
    result, layout = _train(recipe, "tiny_20260101_000000")
    # 180 training rows, 16 per device on 2 workers: 6 optimizer steps instead of 12 on one process.
    assert result.global_step == 6
    assert (Path(result.final_dir) / "model.safetensors").is_file()
    record = json.loads((layout.run_dir("tiny_20260101_000000") / "run.json").read_text())
    assert record["status"] == "complete"
    _assert_one_mlflow_run_logged_by_rank_zero(layout, "tiny_20260101_000000")


def _assert_one_mlflow_run_logged_by_rank_zero(layout, run_id: str) -> None:
    """The launcher opened one MLflow run; rank 0 alone logged to it (one point per logged step, not two)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{layout.durable.resolve() / 'mlflow/mlflow.db'}"
    client = MlflowClient(uri, uri)
    [run] = client.search_runs([client.get_experiment_by_name("nexacompute").experiment_id])
    assert run.info.run_name == run_id and run.info.status == "FINISHED"
    log = [json.loads(line) for line in (layout.run_dir(run_id) / "logs/train_log.jsonl").read_text().splitlines()]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(steps) == [r["step"] for r in log if "loss" in r] and len(steps) >= 2
