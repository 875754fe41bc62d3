"""Evaluate a saved classifier on a prepared split: metrics.json and, optionally, per-row predictions."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig
from nexa_core.training.metrics import classification_metrics, softmax
from nexa_core.training.models import label_names


def predict_logits(model, tokenizer, texts: list[str], batch_size: int, max_length: int,
                   autocast: Callable = contextlib.nullcontext) -> np.ndarray:
    """Batched inference on the model's device, returned in the input order.

    All texts are tokenised first and run in ascending token length, each batch padded only to its own longest
    row: little padding whatever the characters (a short string of rare words can be many tokens).
    `autocast`: a context factory for mixed precision (nexa_core.training.device.inference_autocast).
    """
    import torch
    from transformers.data.data_collator import pad_without_fast_tokenizer_warning

    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    if not texts:
        return out
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    names = [n for n in ("input_ids", "token_type_ids", "attention_mask") if n in encoded]
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    device = next(model.parameters()).device
    model.eval()
    done = []  # logits stay on the device until every batch is queued: no host wait per batch on a GPU
    with torch.inference_mode(), autocast():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            rows = [{n: encoded[n][i] for n in names} for i in idx]
            batch = pad_without_fast_tokenizer_warning(tokenizer, rows, padding=True, return_tensors="pt")
            done.append((idx, model(**batch.to(device)).logits.float()))
    for idx, logits in done:
        out[idx] = logits.cpu().numpy()
    return out


def load_for_inference(model_dir: str | Path, device, precision: str, field: str):
    """A sequence classifier and its tokenizer, the model on `device` (resolved from training.device), and the
    autocast factory for `precision` (`field` names the setting in errors)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nexa_core.training.device import inference_autocast, resolve_device
    from nexa_core.training.models import first_line, load_errors

    device = resolve_device(device)
    autocast, _ = inference_autocast(device, precision, field)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except load_errors() as err:
        raise NexaError(f"--checkpoint {model_dir}: cannot load the model ({first_line(err)}); pass a complete model folder "
                        "(a run's final/ or a checkpoint-N folder)") from None
    return model, tokenizer, autocast


def evaluate_model(model_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, *, split: str = "test",
                   batch_size: int = 64, max_length: int = 128, save_predictions: bool = True,
                   device: str = "auto", precision: str = "fp32", precision_field: str = "training.precision") -> dict:
    """`device`: a training.device value; `precision`: fp32, auto, bf16 or fp16 (the last two under autocast), the
    value of the setting `precision_field` (training.precision for a trained model, the teacher's own for it)."""
    model_dir, dataset_dir, out_dir = Path(model_dir), Path(dataset_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise NexaError(f"--checkpoint {model_dir}: not a model folder (no config.json); pass a run's final/ "
                        "or a checkpoint-N folder")
    info = json.loads((dataset_dir / "dataset.json").read_text())
    frame = pd.read_parquet(dataset_dir / f"{split}.parquet")
    model, tokenizer, autocast = load_for_inference(model_dir, device, precision, precision_field)
    model_labels = label_names(model.config)
    if model_labels != list(info["labels"]):
        raise NexaError(f"--checkpoint {model_dir}: its labels {model_labels} differ from dataset "
                        f"{info['version']} labels {info['labels']}; evaluate it on the data it was trained for")

    logits = predict_logits(model, tokenizer, frame["text"].tolist(), batch_size, max_length, autocast)
    metrics = classification_metrics(logits, frame["label_id"].to_numpy(), model_labels)
    report = {"split": split, "num_examples": len(frame), "dataset_version": info["version"],
              "model_dir": str(model_dir), **metrics}
    out_dir.mkdir(parents=True, exist_ok=True)
    if save_predictions:
        probs = softmax(logits)
        predictions = pd.DataFrame({
            "text": frame["text"], "label": frame["label"],
            "predicted": [model_labels[i] for i in probs.argmax(axis=1)],
            "confidence": probs.max(axis=1),
        })
        predictions["correct"] = predictions["label"] == predictions["predicted"]
        predictions.to_parquet(out_dir / "predictions.parquet", index=False)
        report["predictions_path"] = str(out_dir / "predictions.parquet")
    atomic_write_json(out_dir / "metrics.json", report)
    report["metrics_path"] = str(out_dir / "metrics.json")
    return report


def evaluate_run(cfg: NexaConfig, run_id: str, dataset_dir: Path, layout: Layout) -> dict:
    run_dir = layout.run_dir(run_id)
    return evaluate_model(run_dir / "final", dataset_dir, run_dir, batch_size=cfg.evaluation.batch_size,
                          max_length=cfg.model.max_length, save_predictions=cfg.evaluation.save_predictions,
                          **inference_settings(cfg))


def inference_settings(cfg: NexaConfig) -> dict:
    """evaluate_model's device and precision for a trained model of this config: where and how it was trained."""
    return {"device": cfg.training.device, "precision": cfg.training.precision}
