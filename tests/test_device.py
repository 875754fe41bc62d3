"""One device setting (`training.device`) for every step that trains or infers, chosen without touching
os.environ; evaluation runs on that device, in token-length order."""

from __future__ import annotations

import os

import dagster as dg
import numpy as np
import pytest
import torch

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.data import dataset_for
from nexa_core.training import device as device_mod
from nexa_core.training.device import resolve_device
from nexa_dagster.resources import GPUTrainerResource

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
NEEDS_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def prepared(recipe):
    """The tiny recipe's config, layout and prepared dataset (no training)."""
    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    return cfg, layout, dataset_for(cfg, layout)


@pytest.fixture
def classifier(prepared, tiny_model, tmp_path):
    """An (untrained) classifier folder with the dataset's labels: what evaluation loads."""
    from nexa_core.training.models import load_classifier, load_tokenizer

    _, _, dataset = prepared
    folder = tmp_path / "classifier"
    load_classifier(str(tiny_model), dataset.labels).save_pretrained(folder)
    load_tokenizer(str(tiny_model)).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------------------------- the setting
@pytest.mark.parametrize("value", ["gpu", "cuda:x", "cuda:-1", "CPU", "tpu", ""])
def test_a_bad_device_is_refused_by_the_config_naming_training_device(recipe, value):
    recipe["training"]["device"] = value
    with pytest.raises(NexaError) as err:
        validate_config(recipe)
    assert "training.device:" in str(err.value) and "auto, cpu, cuda or cuda:N" in str(err.value)
    assert "\n" not in str(err.value)


def test_one_pinned_gpu_is_refused_for_several_torchrun_workers(recipe):
    recipe["training"].update(device="cuda:1", distributed={"world_size": 2})
    with pytest.raises(NexaError, match="training: device=cuda:1 pins one GPU.*set training.device=cuda"):
        validate_config(recipe)


@NO_GPU
@pytest.mark.parametrize("value", ["cuda", "cuda:1"])
def test_cuda_asked_on_a_machine_without_one_is_a_one_line_error(value):
    with pytest.raises(NexaError) as err:
        resolve_device(value)
    message = str(err.value)
    assert message.startswith(f"training.device={value}: no CUDA GPU is visible")
    assert "set training.device=auto or cpu" in message and "\n" not in message


@NO_GPU
def test_auto_is_the_cpu_without_a_gpu():
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")


def test_resource_device_overrides_the_recipe_and_auto_keeps_it(recipe):
    recipe["training"]["device"] = "cpu"
    cfg = validate_config(recipe)
    assert GPUTrainerResource().apply(cfg) is cfg
    assert GPUTrainerResource(device="cuda:1").apply(cfg).training.device == "cuda:1"
    with pytest.raises(dg.Failure, match="GPUTrainerResource.device: .*training.device:"):
        GPUTrainerResource(device="gpu0").apply(cfg)


def test_trainer_arguments_follow_the_resolved_device(tmp_path):
    from nexa_core.config import TrainingConfig
    from nexa_core.training.hf import training_arguments

    args = training_arguments(TrainingConfig(), tmp_path, torch.device("cpu"))
    assert args.use_cpu and args.device == torch.device("cpu") and args.n_gpu == 0


# ------------------------------------------------------------------------------------------ no environment change
def _train_on_cpu(way: str, cfg, layout, dataset):
    from nexa_core.training.steps import train_run

    if way == "resource":
        return GPUTrainerResource(device="cpu").train(cfg, dataset.path, "tiny_20260101_000000", layout)
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"device": "cpu"})})
    return train_run(cfg, dataset.path, "tiny_20260101_000000", layout)


@pytest.mark.parametrize("way", ["resource", "training.device"])
def test_choosing_the_cpu_leaves_the_process_environment_untouched(recipe, tmp_path, way):
    recipe["training"].update(max_steps=2, checkpoint={"every_steps": 2, "keep": 1})
    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    before, deterministic = dict(os.environ), torch.are_deterministic_algorithms_enabled()
    result = _train_on_cpu(way, cfg, layout, dataset)
    assert dict(os.environ) == before  # no CUDA_VISIBLE_DEVICES, nor HF's determinism variables
    assert result.global_step == 2
    assert torch.are_deterministic_algorithms_enabled() == deterministic  # CPU determinism was scoped to the run


# ------------------------------------------------------------------------------------------------- evaluation
def _spy_forward(monkeypatch) -> list[dict]:
    """Record, for every forward pass of a BERT classifier, its parameters' device and the batch's lengths."""
    from transformers import BertForSequenceClassification

    calls, forward = [], BertForSequenceClassification.forward

    def spy(self, input_ids=None, attention_mask=None, **kwargs):
        calls.append({"device": next(self.parameters()).device, "inputs": input_ids.device,
                      "lengths": attention_mask.sum(1).tolist(), "width": input_ids.shape[1]})
        return forward(self, input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", spy)
    return calls


def _spy_resolve(monkeypatch) -> list[tuple]:
    resolved, real = [], device_mod.resolve_device

    def spy(setting=None, field=device_mod.FIELD):
        resolved.append((setting, real(setting, field)))
        return resolved[-1][1]

    monkeypatch.setattr(device_mod, "resolve_device", spy)
    return resolved


def test_evaluation_runs_on_the_configured_device(prepared, classifier, monkeypatch, tmp_path):
    from nexa_core.evaluation.evaluate import evaluate_model, inference_settings

    cfg, _, dataset = prepared
    cfg = GPUTrainerResource(device="cpu").apply(cfg)
    resolved, calls = _spy_resolve(monkeypatch), _spy_forward(monkeypatch)
    report = evaluate_model(classifier, dataset.path, tmp_path / "eval", batch_size=8, max_length=32,
                            **inference_settings(cfg))
    assert [setting for setting, _ in resolved] == ["cpu"]  # the configured setting, resolved once
    device = resolved[0][1]
    assert calls and all(c["device"] == device and c["inputs"] == device for c in calls)
    assert report["num_examples"] == sum(len(c["lengths"]) for c in calls)


@NO_GPU
def test_evaluation_on_cuda_without_a_gpu_names_training_device(prepared, classifier, tmp_path):
    from nexa_core.evaluation.evaluate import evaluate_model

    _, _, dataset = prepared
    with pytest.raises(NexaError, match=r"^training.device=cuda: no CUDA GPU is visible"):
        evaluate_model(classifier, dataset.path, tmp_path / "eval", device="cuda")
    assert not (tmp_path / "eval").exists()


def test_predict_logits_batches_by_tokens_and_returns_the_input_order(classifier, monkeypatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nexa_core.evaluation.evaluate import predict_logits

    model = AutoModelForSequenceClassification.from_pretrained(classifier).eval()
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    # Few characters, many tokens (single letters), against more characters in few whole-word tokens.
    texts = ["delightful charming", "q w e r t y u", "a b c d e f g h i", "superb brilliant"]
    tokens = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    by_chars = sorted(range(4), key=lambda i: len(texts[i]))
    by_tokens = sorted(range(4), key=lambda i: tokens[i])
    assert {by_chars[0], by_chars[1]} != {by_tokens[0], by_tokens[1]}  # the two orders batch differently

    calls = _spy_forward(monkeypatch)
    logits = predict_logits(model, tokenizer, texts, batch_size=2, max_length=32)
    assert [c["lengths"] for c in calls] == [sorted(tokens)[:2], sorted(tokens)[2:]]
    assert [c["width"] for c in calls] == [sorted(tokens)[1], sorted(tokens)[3]]  # padded per batch only
    with torch.inference_mode():
        alone = np.concatenate([model(**tokenizer([t], return_tensors="pt")).logits.numpy() for t in texts])
    np.testing.assert_allclose(logits, alone, atol=1e-5)  # each row is its own text's, in the input order


# ------------------------------------------------------------------------------------------------------ on a GPU
@pytest.mark.gpu
@NEEDS_GPU
def test_evaluation_on_cuda_puts_the_parameters_on_the_gpu(prepared, classifier, monkeypatch, tmp_path):
    from nexa_core.evaluation.evaluate import evaluate_model

    _, _, dataset = prepared
    last = f"cuda:{torch.cuda.device_count() - 1}"
    calls = _spy_forward(monkeypatch)
    report = evaluate_model(classifier, dataset.path, tmp_path / "eval", batch_size=8, max_length=32,
                            device=last, precision="bf16")
    assert calls and all(c["device"] == torch.device(last) == c["inputs"] for c in calls)
    assert 0 <= report["accuracy"] <= 1


@pytest.mark.gpu
@NEEDS_GPU
def test_trainer_arguments_select_one_gpu_by_index(tmp_path):
    from nexa_core.config import TrainingConfig
    from nexa_core.training.hf import training_arguments

    before = dict(os.environ)
    last = torch.device("cuda", torch.cuda.device_count() - 1)
    args = training_arguments(TrainingConfig(), tmp_path, resolve_device(str(last)))
    assert args.device == last and args.n_gpu == 1 and torch.cuda.current_device() == last.index
    assert dict(os.environ) == before
