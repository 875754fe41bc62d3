"""Numeric precision of teacher inference: fp32, or bf16 autocast (the default on a GPU).

Teacher outputs computed at different precisions differ in their last digits, so bf16 labels its outputs with
its own version (`<teacher_version>-bf16`): a resumed or incremental run never mixes numerics in one folder
(say a CPU run continuing a GPU one), and a student's lineage says which numbers it learnt from.
Not offered: int8 dynamic quantization. On the fine-tuned demo MiniLM it flipped 4.3% of the teacher's top-1
predictions (mean |probability change| 0.046, see bench/teacher_outputs.py in the README), which is wrong labels
for the student, not rounding.
"""

from __future__ import annotations

import contextlib
from typing import Callable

from nexa_core.common.errors import NexaError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(device: str | None, precision: str = "auto"):
    """The torch device, an autocast context factory and the precision actually used.

    auto: bf16 autocast on a CUDA GPU that supports it, else fp32 (CPUs without bf16 units only emulate it).
    """
    import torch

    if precision not in PRECISIONS:
        raise NexaError(f"distill.teacher_precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise NexaError(f"distill.teacher_precision: {torch.cuda.get_device_name(device)} has no bf16; use fp32")
    autocast: Callable = contextlib.nullcontext
    if precision == "bf16":
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    return device, autocast, precision


def labels_version(teacher_version: str, precision: str) -> str:
    """The version that keys a teacher's outputs: the teacher's own for fp32, suffixed for other precisions."""
    return teacher_version if precision == "fp32" else f"{teacher_version}-{precision}"
