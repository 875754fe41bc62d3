"""Classification metrics from logits: accuracy, macro-F1, cross-entropy loss and per-class scores."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, label_names: list[str]) -> dict:
    """Per-class precision/recall/F1 and their macro average; classes absent from both sides score 0."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    preds = logits.argmax(axis=-1)
    probs = softmax(logits)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean()) if len(labels) else 0.0
    per_class = {}
    for idx, name in enumerate(label_names):
        tp = int(((preds == idx) & (labels == idx)).sum())
        fp = int(((preds == idx) & (labels != idx)).sum())
        fn = int(((preds != idx) & (labels == idx)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int((labels == idx).sum())}
    return {
        "accuracy": float((preds == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])) if per_class else 0.0,
        "loss": loss,
        "per_class": per_class,
    }
