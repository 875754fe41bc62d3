"""Map the configured precision to Trainer flags, refusing modes the hardware cannot run."""

from __future__ import annotations

import torch

from nexa_core.common.errors import NexaError


def precision_flags(precision: str, tf32: bool, device=None) -> dict[str, bool]:
    """`device`: the resolved training.device (None: any visible GPU counts)."""
    cuda = torch.cuda.is_available() if device is None else device.type == "cuda"
    if precision == "fp16" and not cuda:
        raise NexaError("training.precision=fp16 needs a CUDA GPU and training runs on the CPU here; "
                        "set training.precision=fp32")
    if precision == "bf16" and not (cuda and torch.cuda.is_bf16_supported()):
        where = "this GPU lacks bf16 (needs Ampere or newer)" if cuda else "training runs on the CPU"
        raise NexaError(f"training.precision=bf16 is not supported here: {where}; set training.precision=fp32 or fp16")
    if tf32 and not (cuda and torch.cuda.get_device_capability(device)[0] >= 8):
        raise NexaError("training.tf32=true needs an Ampere or newer CUDA GPU; set training.tf32=false")
    # tf32=None lets torch keep its default; False would force it off on GPUs where it is harmless.
    return {"fp16": precision == "fp16", "bf16": precision == "bf16", "tf32": True if tf32 else None}
