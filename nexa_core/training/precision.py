"""Map the configured precision to Trainer flags, refusing modes the hardware cannot run (fastpath.py decides)."""

from __future__ import annotations

import torch

from nexa_core.config import TrainingConfig
from nexa_core.training.fastpath import FastPath, hardware, resolve_fast_path


def precision_flags(precision: str, tf32, device=None) -> dict[str, bool]:
    """`device`: the resolved training.device (None: the current GPU if one is visible, else the CPU)."""
    if device is None:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return trainer_flags(resolve_fast_path(TrainingConfig(precision=precision, tf32=tf32), hardware(device)))


def trainer_flags(fast: FastPath) -> dict[str, bool]:
    # tf32=None lets torch keep its default; False would force it off on GPUs where it is harmless.
    return {"fp16": fast.precision == "fp16", "bf16": fast.precision == "bf16", "tf32": True if fast.tf32 else None}
