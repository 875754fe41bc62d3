"""The GPU fast path on the CPU: what `auto` resolves to for each kind of device (the pure resolution, with the
device's properties given), the CPU path unchanged, loader workers' batches counted, packing refused in one line,
no host reads of tensors inside a training step, and `training.compile: true` training the tiny model."""

from __future__ import annotations

import collections
import dataclasses
import json
import traceback
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import TrainingConfig, validate_config
from nexa_core.data import dataset_for
from nexa_core.training.fastpath import FastPath, Hardware, resolve_fast_path
from nexa_core.training.hf import training_arguments
from nexa_core.training.throughput import COUNTS, BatchCounter

CPU = Hardware(cuda=False, cpus=8)
H200 = Hardware(cuda=True, bf16=True, capability=(9, 0), name="NVIDIA H200", cpus=16)
V100 = Hardware(cuda=True, bf16=False, capability=(7, 0), name="Tesla V100-SXM2-32GB", cpus=8)


def resolve(hw: Hardware, **training) -> FastPath:
    return resolve_fast_path(TrainingConfig(**training), hw)


# ------------------------------------------------------------------------------------------ what auto resolves to
def test_the_defaults_are_auto_and_resolve_to_the_old_cpu_path_on_a_cpu():
    t = TrainingConfig()
    assert (t.precision, t.tf32, t.optimizer.name, t.compile, t.packing) == ("auto", "auto", "auto", False, False)
    assert resolve(CPU) == FastPath(precision="fp32", tf32=False, optimizer="adamw_torch", compile=False,
                                    loader_workers=0, pin_memory=False)


def test_auto_on_an_ampere_or_newer_gpu_is_bf16_tf32_fused_adamw_and_background_loading():
    assert resolve(H200) == FastPath(precision="bf16", tf32=True, optimizer="adamw_torch_fused", compile=False,
                                     loader_workers=4, pin_memory=True)
    # Few cores: never more loader processes than cores left beside the training process.
    assert resolve(dataclasses.replace(H200, cpus=2)).loader_workers == 1
    assert resolve(H200, dataloader_workers=0).loader_workers == 0


def test_auto_on_a_pre_ampere_gpu_is_fp32_without_tf32_and_explicit_choices_are_kept():
    fast = resolve(V100)
    assert (fast.precision, fast.tf32, fast.optimizer) == ("fp32", False, "adamw_torch_fused")
    assert resolve(V100, precision="fp16").precision == "fp16"
    kept = resolve(H200, precision="fp32", tf32=False, optimizer={"name": "adamw_torch"}, compile=True)
    assert (kept.precision, kept.tf32, kept.optimizer, kept.compile) == ("fp32", False, "adamw_torch", True)


@pytest.mark.parametrize("hw, training, field", [
    (V100, {"precision": "bf16"}, "training.precision=bf16 is not supported here: this GPU lacks bf16"),
    (V100, {"tf32": True}, "training.tf32=true needs an Ampere or newer CUDA GPU"),
    (CPU, {"precision": "fp16"}, "training.precision=fp16 needs a CUDA GPU"),
    (CPU, {"tf32": "true"}, "training.tf32=true needs an Ampere"),
    (H200, {"packing": True}, "training.packing=true: padding-free packing needs a causal LM on flash attention"),
])
def test_what_the_device_cannot_run_is_one_line_naming_the_field_and_the_fix(hw, training, field):
    with pytest.raises(NexaError) as err:
        resolve(hw, **training)
    assert str(err.value).startswith(field) and "; set training." in str(err.value) and "\n" not in str(err.value)


def test_tf32_reads_yaml_booleans_and_refuses_other_words(recipe):
    assert TrainingConfig(tf32=True).tf32 == "true" and TrainingConfig(tf32=False).tf32 == "false"
    recipe["training"]["tf32"] = "sometimes"
    with pytest.raises(NexaError, match="training.tf32"):
        validate_config(recipe)


def test_packing_is_refused_before_any_run_folder_is_written(recipe, tmp_path):
    from nexa_core.training.steps import train_run

    cfg = validate_config({**recipe, "training": {**recipe["training"], "packing": True}})
    layout = Layout.from_storage(cfg.storage)
    with pytest.raises(NexaError, match="training.packing=true"):
        train_run(cfg, dataset_for(cfg, layout).path, "tiny_20260101_000000", layout)
    assert not layout.run_dir("tiny_20260101_000000").exists()


def test_cpu_trainer_arguments_are_the_single_process_fp32_path(tmp_path):
    args = training_arguments(TrainingConfig(), tmp_path, torch.device("cpu"))
    assert (args.fp16, args.bf16, args.tf32, args.optim, args.torch_compile) == (False, False, None, "adamw_torch",
                                                                                False)
    assert (args.dataloader_num_workers, args.dataloader_pin_memory, args.logging_nan_inf_filter) == (0, False, True)


# -------------------------------------------------------------------------------------- counts from loader workers
def test_a_batch_collated_in_a_loader_worker_carries_its_counts_to_the_training_process():
    def collate(features):
        width = max(map(len, features))
        mask = torch.tensor([[1] * len(f) + [0] * (width - len(f)) for f in features])
        return {"input_ids": mask.clone(), "attention_mask": mask}

    counter = BatchCounter(collate)
    loader = torch.utils.data.DataLoader([[1, 2, 3], [1], [1, 2], [1, 2]], batch_size=2, num_workers=1,
                                         collate_fn=counter)
    batches = list(loader)
    assert (counter.samples, counter.tokens) == (0, 0)  # the worker's own copy counted, not this one
    assert [tuple(b[COUNTS]) for b in batches] == [(2, 4), (2, 4)]
    for b in batches:  # what NexaTrainer._prepare_inputs does with each batch it takes
        counter.add(*b.pop(COUNTS))
    assert (counter.samples, counter.tokens) == (4, 8)


# ------------------------------------------------------------------------------------------ no sync inside a step
class HostReads(TrainerCallback):
    """Counts reads of tensor values to the host (item, bool, float, cpu, ...) between step begin and step end."""

    NAMES = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy", "cpu")

    def __init__(self):
        self.inside, self.where = False, collections.Counter()

    def on_step_begin(self, *args, **kwargs):
        self.inside = True

    def on_step_end(self, *args, **kwargs):
        self.inside = False

    def install(self, monkeypatch):
        for name in self.NAMES:
            monkeypatch.setattr(torch.Tensor, name, self._counted(name, getattr(torch.Tensor, name)))

    def _counted(self, name, original):
        def read(tensor, *args, **kwargs):
            if self.inside:
                frame = traceback.extract_stack(limit=3)[-2]
                self.where[f"{name} {Path(frame.filename).name}:{frame.lineno}"] += 1
            return original(tensor, *args, **kwargs)
        return read


def test_a_training_step_reads_no_tensor_back_to_the_host(recipe, tmp_path, monkeypatch):
    """With a GPU's settings (fused AdamW, HF's per-step NaN check off), forward, backward, clipping, optimizer and
    scheduler steps read nothing back; losses and gradient norms are read at logging steps only (outside the window).
    The one exception is transformers' own SDPA mask check (`padding_mask.all()` in masking_utils, once per forward,
    gone under torch.compile): not ours to remove, and listed so a new read anywhere else fails here."""
    from nexa_core.training.features import tokenized_split
    from nexa_core.training.hf import build_trainer
    from nexa_core.training.models import load_classifier, load_tokenizer

    cfg = validate_config({**recipe, "training": {**recipe["training"], "max_steps": 6,
                                                  "optimizer": {"name": "adamw_torch_fused", "lr": 0.003}}})
    dataset = dataset_for(cfg, Layout.from_storage(cfg.storage))
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    model = load_classifier(cfg.model.name_or_path, dataset.labels)
    args = training_arguments(cfg.training, tmp_path / "out", torch.device("cpu"))
    args = dataclasses.replace(args, logging_nan_inf_filter=False, eval_strategy="no", save_strategy="no",
                               load_best_model_at_end=False)
    probe = HostReads()
    trainer = build_trainer(model, tokenizer, args, tokenized_split(dataset.path, "train", tokenizer, 32), None,
                            dataset.labels, [probe], throughput=True)
    probe.install(monkeypatch)
    trainer.train()
    assert trainer.state.global_step == 6 and len([r for r in trainer.state.log_history if "loss" in r]) == 3
    assert set(probe.where) <= {f"__bool__ masking_utils.py:{line}" for line in range(300, 400)}, probe.where


# ---------------------------------------------------------------------------------------------------- compile
@pytest.mark.slow
def test_compile_true_trains_the_tiny_model_and_saves_plain_weights(recipe):
    """~50 s with a cold inductor cache on the 2-core CPU (it compiles C++ kernels), ~15 s warm."""
    from safetensors.torch import load_file

    from nexa_core.training.steps import train_run

    cfg = validate_config({**recipe, "training": {**recipe["training"], "max_steps": 2, "compile": True,
                                                  "checkpoint": {"every_steps": 100, "keep": 1}}})
    layout = Layout.from_storage(cfg.storage)
    result = train_run(cfg, dataset_for(cfg, layout).path, "tiny_20260101_000000", layout)
    assert result.global_step == 2 and result.fast_path["compile"] is True
    assert result.fast_path["attention"] == "sdpa" and result.fast_path["precision"] == "fp32"
    assert result.train_metrics["train_tokens_per_second"] > 0 and "mfu" not in result.train_metrics  # no GPU peak
    record = json.loads((Path(result.run_dir) / "run.json").read_text())
    assert record["fast_path"] == result.fast_path
    weights = load_file(Path(result.final_dir) / "model.safetensors")
    assert "classifier.weight" in weights and not any(k.startswith("_orig_mod") for k in weights)


# ------------------------------------------------------------------------------------------- the GPU bench, here
def test_the_gpu_scripts_pass_shellcheck():
    import shutil
    import subprocess
    import sys

    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    scripts = [str(Path(__file__).parents[1] / "bench" / name) for name in ("gpu_checks.sh", "gpu_prepare.sh")]
    proc = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_gpu_training_bench_runs_end_to_end_on_the_cpu_with_smoke():
    """~12 s: a tiny BERT, 4 steps of batch 8, each contender timed over its last 3 steps."""
    from bench import gpu_train

    results = {r["name"]: r for r in gpu_train.main(["--smoke"])}
    assert list(results) == ["ours", "hf_run_glue", "hf_bf16_dynamic"]
    assert all(r["samples_s"] > 0 and r["tokens_s"] > 0 and r["mfu"] is None for r in results.values())  # CPU: no peak
    assert results["hf_run_glue"]["padded_per_row"] == 128  # run_glue pads every row to max_length
    assert results["ours"]["settings"]["precision"] == "fp32" and results["ours"]["settings"]["attention"] == "sdpa"
