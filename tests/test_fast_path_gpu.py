"""The GPU fast path on a real GPU: the `auto` defaults train in bf16 with tf32 and fused AdamW from loader workers,
log throughput and MFU, make no device sync inside a step but transformers' SDPA mask check, and teacher outputs
and evaluation run in bf16 on the GPU close to fp32. Skipped without CUDA (bench/gpu_checks.sh runs them)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import TrainerCallback

from nexa_core.common.layout import Layout
from nexa_core.config import TrainingConfig, validate_config
from nexa_core.data import dataset_for
from nexa_core.training.fastpath import hardware
from tests.tiny import write_reviews_csv

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def ampere() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability(0)[0] >= 8


def test_trainer_arguments_on_the_gpu_are_the_fast_path(tmp_path):
    from nexa_core.training.hf import training_arguments

    device = torch.device("cuda", 0)
    args = training_arguments(TrainingConfig(), tmp_path, device)
    assert (args.bf16, args.tf32) == ((True, True) if ampere() else (False, None))
    assert args.optim == "adamw_torch_fused" and args.dataloader_pin_memory is True
    assert args.dataloader_num_workers == min(4, hardware(device).cpus - 1)
    assert args.logging_nan_inf_filter is False and args.accelerator_config.non_blocking is True


def test_auto_defaults_train_in_bf16_with_throughput_and_mfu_logged(recipe):
    from nexa_core.training.steps import train_run

    cfg = validate_config(recipe)  # training.device, precision, tf32 and optimizer all left at auto
    layout = Layout.from_storage(cfg.storage)
    result = train_run(cfg, dataset_for(cfg, layout).path, "tiny_20260101_000000", layout)
    fast = result.fast_path
    assert fast["precision"] == ("bf16" if ampere() else "fp32") and fast["tf32"] is ampere()
    assert fast["optimizer"] == "adamw_torch_fused" and fast["attention"] == "sdpa" and fast["pin_memory"] is True
    assert json.loads((Path(result.run_dir) / "run.json").read_text())["fast_path"] == fast
    assert result.best_eval["accuracy"] >= 0.8  # numerically sound: it learns what fp32 on the CPU learns
    log = [json.loads(line) for line in Path(result.log_path).read_text().splitlines()]
    timed = [r for r in log if "tokens_per_second" in r]
    # Rows counted in loader workers reach the log: the window's samples/s is there and positive.
    assert timed and all(r["samples_per_second"] > 0 and r["gpu_memory_peak_mb"] > 0 for r in timed)
    from nexa_core.telemetry.flops import peak_flops

    if peak_flops(torch.cuda.get_device_name(0)):
        assert all(0 < r["mfu"] < 1 for r in timed)
        assert 0 < result.train_metrics["mfu"] < 1  # the run's mean: what the asset metadata shows


class SyncWatch(TrainerCallback):
    """CUDA's sync debug mode (warn) between step begin and step end: every synchronising call inside a step."""

    def on_step_begin(self, *args, **kwargs):
        torch.cuda.set_sync_debug_mode("warn")

    def on_step_end(self, *args, **kwargs):
        torch.cuda.set_sync_debug_mode("default")


def test_no_device_sync_inside_a_training_step_but_the_sdpa_mask_check(recipe, tmp_path):
    from nexa_core.training.features import tokenized_split
    from nexa_core.training.hf import build_trainer, training_arguments
    from nexa_core.training.models import load_classifier, load_tokenizer

    cfg = validate_config({**recipe, "training": {**recipe["training"], "max_steps": 8}})
    dataset = dataset_for(cfg, Layout.from_storage(cfg.storage))
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    args = dataclasses.replace(training_arguments(cfg.training, tmp_path / "out", torch.device("cuda", 0)),
                               eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    trainer = build_trainer(load_classifier(cfg.model.name_or_path, dataset.labels), tokenizer, args,
                            tokenized_split(dataset.path, "train", tokenizer, 32), None, dataset.labels, [SyncWatch()],
                            throughput=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.train()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = {Path(w.filename).name for w in caught if "synchroniz" in str(w.message)}
    assert trainer.state.global_step == 8
    assert syncs <= {"masking_utils.py"}, [f"{w.filename}:{w.lineno} {w.message}" for w in caught]


def test_teacher_outputs_in_bf16_on_the_gpu_are_close_to_fp32(tiny_model, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from nexa_core.distill.collect import collect_classification, read_outputs, teacher_version

    teacher = tmp_path / "teacher"
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(tiny_model, num_labels=3, initializer_range=0.5)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(teacher)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(teacher)
    frame = pd.read_csv(write_reviews_csv(tmp_path / "r.csv", rows=64, seed=3))
    inputs = pd.DataFrame({"input_id": [f"r{i:03d}" for i in range(len(frame))], "text": frame["review"]})
    args = {"top_k": 3, "batch_size": 16, "max_length": 32, "device": "cuda"}
    bf16 = collect_classification(teacher, inputs, tmp_path / "bf16", precision="auto", **args)
    fp32 = collect_classification(teacher, inputs, tmp_path / "fp32", precision="fp32", **args)
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert bf16["precision"] == expected and bf16["computed"] == fp32["computed"] == 64
    assert bf16["teacher_version"] == (f"{teacher_version(teacher)}-bf16" if expected == "bf16"
                                       else teacher_version(teacher))

    def logits(out) -> np.ndarray:
        rows = read_outputs(out).set_index("input_id").loc[inputs["input_id"]]
        full = np.zeros((len(rows), 3), dtype=np.float32)
        np.put_along_axis(full, np.stack(rows["topk_ids"].to_numpy()), np.stack(rows["topk_logits"].to_numpy()), 1)
        return full

    low, high = logits(tmp_path / "bf16"), logits(tmp_path / "fp32")
    assert np.abs(low - high).max() < 0.1 * max(1.0, np.abs(high).max())  # bf16 keeps ~3 significant digits
    clear = np.sort(high, 1)[:, -1] - np.sort(high, 1)[:, -2] > 0.1  # rows not decided by rounding
    assert clear.any() and (low.argmax(1) == high.argmax(1))[clear].all()


def test_evaluation_on_the_gpu_in_auto_precision_matches_the_cpu(recipe, tiny_model, tmp_path):
    from nexa_core.evaluation.evaluate import evaluate_model
    from nexa_core.training.models import load_classifier, load_tokenizer

    cfg = validate_config(recipe)
    dataset = dataset_for(cfg, Layout.from_storage(cfg.storage))
    folder = tmp_path / "classifier"
    torch.manual_seed(0)
    load_classifier(str(tiny_model), dataset.labels).save_pretrained(folder)
    load_tokenizer(str(tiny_model)).save_pretrained(folder)
    gpu = evaluate_model(folder, dataset.path, tmp_path / "gpu", batch_size=8, max_length=32, device="cuda",
                         precision="auto")
    cpu = evaluate_model(folder, dataset.path, tmp_path / "cpu", batch_size=8, max_length=32, device="cpu",
                         precision="fp32")
    assert gpu["num_examples"] == cpu["num_examples"] > 0
    on_gpu = pd.read_parquet(gpu["predictions_path"])
    on_cpu = pd.read_parquet(cpu["predictions_path"])
    assert np.abs(on_gpu["confidence"].to_numpy() - on_cpu["confidence"].to_numpy()).max() < 0.02
