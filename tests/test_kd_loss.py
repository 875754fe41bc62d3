"""The KD loss against values computed independently with numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nexa_core.training.kd_loss import kd_loss

STUDENT = np.array([[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]])
TEACHER = np.array([[0.5, 2.5, -1.0], [1.0, 0.0, 2.0]])
LABELS = np.array([1, 2])


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_kl(teacher: np.ndarray, student: np.ndarray, temperature: float) -> float:
    """KL(p || q) per row summed, averaged over rows; teacher entries of -inf have p = 0 and add nothing."""
    p, q = np_softmax(teacher / temperature), np_softmax(student / temperature)
    terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
    return float(terms.sum(axis=1).mean())


def np_ce(student: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np_softmax(student)[np.arange(len(labels)), labels]).mean())


def topk(teacher: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    values, ids = torch.topk(torch.tensor(teacher, dtype=torch.float32), k, dim=-1)
    return ids, values


def loss(student=STUDENT, labels=LABELS, teacher=TEACHER, k=3, alpha=0.3, temperature=2.0) -> torch.Tensor:
    ids, values = topk(teacher, k)
    return kd_loss(torch.tensor(student, dtype=torch.float32), torch.tensor(labels), ids, values, alpha, temperature)


def test_hand_computed_value():
    # 2 examples, 3 classes, alpha=0.3, T=2: 0.3 * CE + 0.7 * 4 * KL(softmax(t/2) || softmax(s/2)).
    expected = 0.3 * np_ce(STUDENT, LABELS) + 0.7 * 4.0 * np_kl(TEACHER, STUDENT, 2.0)
    assert loss().item() == pytest.approx(expected, rel=1e-5)
    # By hand: CE = (0.46437 + 0.07615) / 2 = 0.27026; KL rows 0.06694, 0.10600 -> 0.08647;
    # 0.3 * 0.27026 + 0.7 * 4 * 0.08647 = 0.3232.
    assert expected == pytest.approx(0.3232, abs=2e-4)


def test_alpha_one_is_plain_cross_entropy():
    expected = F.cross_entropy(torch.tensor(STUDENT, dtype=torch.float32), torch.tensor(LABELS)).item()
    assert loss(alpha=1.0).item() == pytest.approx(expected, rel=1e-6)
    assert loss(alpha=1.0, teacher=-TEACHER).item() == pytest.approx(expected, rel=1e-6)  # teacher is ignored


def test_alpha_zero_is_pure_kd_and_ignores_labels():
    expected = 4.0 * np_kl(TEACHER, STUDENT, 2.0)
    assert loss(alpha=0.0).item() == pytest.approx(expected, rel=1e-5)
    assert loss(alpha=0.0, labels=np.array([0, 0])).item() == pytest.approx(expected, rel=1e-5)
    assert loss(alpha=0.0, teacher=STUDENT).item() == pytest.approx(0.0, abs=1e-6)  # student == teacher


def test_temperature_scales_the_kd_term():
    for temperature in (1.0, 4.0):
        expected = temperature ** 2 * np_kl(TEACHER, STUDENT, temperature)
        assert loss(alpha=0.0, temperature=temperature).item() == pytest.approx(expected, rel=1e-5)


def test_topk_smaller_than_num_labels_renormalises_over_the_topk():
    student = np.array([[0.3, 1.0, -0.5, 2.0], [1.5, 0.1, 0.4, -2.0]])
    teacher = np.array([[0.0, 3.0, -1.0, 2.0], [2.0, -1.0, 1.0, 0.5]])
    masked = teacher.copy()  # keep each row's top 2, the rest has probability 0
    for row in masked:
        row[np.argsort(row)[:2]] = -np.inf
    labels = np.array([3, 0])
    expected = 0.3 * np_ce(student, labels) + 0.7 * 4.0 * np_kl(masked, student, 2.0)
    s = torch.tensor(student, dtype=torch.float32, requires_grad=True)
    ids, values = topk(teacher, 2)
    value = kd_loss(s, torch.tensor(labels), ids, values, 0.3, 2.0)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert value.item() != pytest.approx(loss(student=student, labels=labels, teacher=teacher, k=4).item(), rel=1e-3)
    value.backward()  # zero-probability classes give no NaN in the gradient either
    assert torch.isfinite(s.grad).all()


def test_no_gold_labels_uses_only_the_kd_term():
    expected = 4.0 * np_kl(TEACHER, STUDENT, 2.0)
    for alpha in (0.3, 1.0):
        value = loss(labels=np.array([-100, -100]), alpha=alpha)
        assert torch.isfinite(value)
        assert value.item() == pytest.approx(expected, rel=1e-5)


def test_unlabelled_rows_are_left_out_of_ce_only():
    # CE on the labelled row alone; the KD term still averages over both rows.
    expected = 0.3 * np_ce(STUDENT[1:], LABELS[1:]) + 0.7 * 4.0 * np_kl(TEACHER, STUDENT, 2.0)
    assert loss(labels=np.array([-100, 2])).item() == pytest.approx(expected, rel=1e-5)
