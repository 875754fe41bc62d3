"""Evaluate a saved classifier on a prepared split: metrics.json and, optionally, per-row predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.training.models import label_names
from nexa_core.config import NexaConfig
from nexa_core.common.layout import Layout
from nexa_core.training.metrics import classification_metrics, softmax


def predict_logits(model, tokenizer, texts: list[str], batch_size: int, max_length: int) -> np.ndarray:
    """Batched inference sorted by length (little padding), returned in the input order."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    device = next(model.parameters()).device
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                              padding=True, return_tensors="pt").to(device)
            out[idx] = model(**batch).logits.float().cpu().numpy()
    return out


def evaluate_model(model_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, *, split: str = "test",
                   batch_size: int = 64, max_length: int = 128, save_predictions: bool = True) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir, dataset_dir, out_dir = Path(model_dir), Path(dataset_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise NexaError(f"--checkpoint {model_dir}: not a model folder (no config.json); pass a run's final/ "
                        "or a checkpoint-N folder")
    info = json.loads((dataset_dir / "dataset.json").read_text())
    frame = pd.read_parquet(dataset_dir / f"{split}.parquet")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model_labels = label_names(model.config)
    if model_labels != list(info["labels"]):
        raise NexaError(f"--checkpoint {model_dir}: its labels {model_labels} differ from dataset "
                        f"{info['version']} labels {info['labels']}; evaluate it on the data it was trained for")

    logits = predict_logits(model, tokenizer, frame["text"].tolist(), batch_size, max_length)
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
                          max_length=cfg.model.max_length, save_predictions=cfg.evaluation.save_predictions)
