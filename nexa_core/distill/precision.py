"""Numeric precision of teacher inference: fp32, or bf16 autocast (the default on a GPU).

Teacher outputs computed at different precisions differ in their last digits, so bf16 labels its outputs with
its own version (`<teacher_version>-bf16`): a resumed or incremental run never mixes numerics in one folder
(say a CPU run continuing a GPU one), and a student's lineage says which numbers it learnt from.
Not offered: int8 dynamic quantization. On the fine-tuned demo MiniLM it flipped 4.3% of the teacher's top-1
predictions (mean |probability change| 0.046, see bench/teacher_outputs.py in the README), which is wrong labels
for the student, not rounding.
"""

from __future__ import annotations

from nexa_core.common.errors import NexaError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(device=None, precision: str = "auto"):
    """The teacher's torch device (training.device, see nexa_core.training.device), an autocast context factory
    and the precision actually used. auto: bf16 autocast on a CUDA GPU that supports it, else fp32."""
    from nexa_core.training.device import inference_autocast, resolve_device

    if precision not in PRECISIONS:
        raise NexaError(f"distill.teacher_precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    device = resolve_device(device)
    autocast, precision = inference_autocast(device, precision, "distill.teacher_precision")
    return device, autocast, precision


def labels_version(teacher_version: str, precision: str) -> str:
    """The version that keys a teacher's outputs: the teacher's own for fp32, suffixed for other precisions."""
    return teacher_version if precision == "fp32" else f"{teacher_version}-{precision}"
