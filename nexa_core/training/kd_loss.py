"""Knowledge-distillation loss for classifiers from stored top-k teacher logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def teacher_log_probs(teacher_topk_ids: torch.Tensor, teacher_topk_logits: torch.Tensor, num_labels: int,
                      temperature: float) -> torch.Tensor:
    """Log-probabilities of the teacher at temperature T, renormalised over its stored top-k classes.

    Classes outside the top-k get -inf (probability 0); with k >= num_labels this is the exact distribution.
    """
    ids = teacher_topk_ids.long()
    full = torch.full((ids.shape[0], num_labels), float("-inf"), dtype=torch.float32, device=ids.device)
    full.scatter_(1, ids, teacher_topk_logits.float())
    return F.log_softmax(full / temperature, dim=-1)


def kd_loss(student_logits: torch.Tensor, labels: torch.Tensor | None, teacher_topk_ids: torch.Tensor,
            teacher_topk_logits: torch.Tensor, alpha: float, temperature: float) -> torch.Tensor:
    """alpha * CE(student, gold) + (1 - alpha) * T^2 * KL(teacher_T || student_T), KL with batchmean reduction.

    Labels of -100 mean "no gold label": CE averages over the labelled rows only, while KL uses every row.
    A batch without any gold label (or labels=None) returns the KD term alone, T^2 * KL, whatever alpha is.
    """
    student = student_logits.float()
    if student.shape[0] == 0:  # an empty batch contributes nothing (and no NaN)
        return student.sum()
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = teacher_log_probs(teacher_topk_ids.to(student.device), teacher_topk_logits.to(student.device),
                              student.shape[-1], temperature)
    p = log_p.exp()
    # p * log p is 0 where p is 0; replacing -inf by 0 first keeps both the value and the gradient NaN-free.
    log_p = log_p.masked_fill(p == 0, 0.0)
    kl = (p * (log_p - log_q)).sum() / student.shape[0]
    kd = kl * temperature ** 2
    if labels is None:
        return kd
    labels = labels.to(student.device).long()
    if not bool((labels != IGNORE_INDEX).any()):
        return kd
    ce = F.cross_entropy(student, labels, ignore_index=IGNORE_INDEX)
    return alpha * ce + (1.0 - alpha) * kd
