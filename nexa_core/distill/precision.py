"""Numeric precision of teacher inference: fp32, bf16 autocast, or dynamic int8 on CPU.

Teacher outputs computed at different precisions differ in their last digits, so each precision other than
fp32 labels its outputs with its own version (`<teacher_version>-bf16`, `-int8`): a resumed or incremental run
never mixes numerics in one folder, and a student's lineage says which numbers it learnt from.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Literal

from nexa_core.errors import NexaError

Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def resolve_precision(device: str | None, precision: str = "auto"):
    """The torch device, an autocast context factory and the precision actually used.

    auto: bf16 autocast on a CUDA GPU that supports it, else fp32. int8 is CPU only: dynamic quantization of the
    Linear layers runs on the CPU's int8 dot-product units (fbgemm, VNNI), and has no CUDA kernels.
    """
    import torch

    if precision not in PRECISIONS:
        raise NexaError(f"distill.teacher_precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "int8" and cuda:
        raise NexaError("distill.teacher_precision: int8 runs on CPU only; use bf16 (or auto) on a GPU")
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise NexaError(f"distill.teacher_precision: {torch.cuda.get_device_name(device)} has no bf16; use fp32")
    autocast: Callable = contextlib.nullcontext
    if precision == "bf16":
        autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
    return device, autocast, precision


def prepare_model(model, precision: str):
    """The model as it runs at `precision`: int8 swaps every nn.Linear for a dynamically quantized one."""
    if precision != "int8":
        return model
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao; the API still works
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def labels_version(teacher_version: str, precision: str) -> str:
    """The version that keys a teacher's outputs: the teacher's own for fp32, suffixed for other precisions."""
    return teacher_version if precision == "fp32" else f"{teacher_version}-{precision}"
