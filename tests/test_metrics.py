"""Classification metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nexa_core.release.gates import gate_failures
from nexa_core.training.metrics import classification_metrics


def test_metrics_match_a_hand_computed_example():
    # labels:      a a b b b ; predictions: a b b b a
    logits = np.array([[2, 0], [0, 1], [0, 3], [0, 2], [1, 0]], dtype=float)
    labels = np.array([0, 0, 1, 1, 1])
    m = classification_metrics(logits, labels, ["a", "b"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    # class a: tp=1 fp=1 fn=1 -> p=r=f1=0.5 ; class b: tp=2 fp=1 fn=1 -> p=r=f1=2/3
    assert m["per_class"]["a"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    expected_loss = -np.mean([math.log(math.exp(l[y]) / np.exp(l).sum()) for l, y in zip(logits, labels)])
    assert m["loss"] == pytest.approx(expected_loss)


def test_gates_name_each_missed_threshold():
    assert gate_failures({"accuracy": 0.9, "macro_f1": 0.5}, {"accuracy": 0.8, "macro_f1": 0.6}) == [
        "macro_f1 0.500 < 0.600 (evaluation.thresholds.macro_f1)"]
    assert gate_failures({}, {"accuracy": 0.1}) == ["accuracy not reported, minimum 0.100 (evaluation.thresholds.accuracy)"]
