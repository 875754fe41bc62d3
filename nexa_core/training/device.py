"""Where a step trains or infers, and in which numeric precision: the one reading of `training.device`.

Every step that trains or infers (trainer, teacher outputs, student, evaluation, comparison, champion re-score)
resolves its device here. Nothing touches the process environment (no CUDA_VISIBLE_DEVICES): a GPU is chosen by
index, so other steps in the same process, and the processes they start, see every GPU as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from nexa_core.common.errors import NexaError
from nexa_core.config import DEVICE_RE

FIELD = "training.device"


def resolve_device(setting=None, field: str = FIELD):
    """`auto` (or None): the first visible GPU, else the CPU; `cpu`; `cuda` (the first visible GPU); `cuda:N`.

    Always an indexed device on a GPU (`cuda:0`, never bare `cuda`), so every step of a run lands on the same GPU
    whatever the process's current CUDA device is. A GPU asked for but absent is a one-line error naming `field`.
    """
    import torch

    setting = str(setting) if setting is not None else "auto"
    if not DEVICE_RE.fullmatch(setting):
        raise NexaError(f"{field}={setting!r}: not a device; use auto, cpu, cuda or cuda:N")
    if setting == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if setting == "auto":
            return torch.device("cpu")
        raise NexaError(f"{field}={setting}: no CUDA GPU is visible to this process; set {field}=auto or cpu, "
                        "or run on a GPU node")
    index, count = int(setting.partition(":")[2] or 0), torch.cuda.device_count()
    if index >= count:
        raise NexaError(f"{field}={setting}: only {count} GPU(s) visible (cuda:0 to cuda:{count - 1}); "
                        "pick one of them")
    return torch.device("cuda", index)


def inference_autocast(device, precision: str, field: str) -> tuple[Callable, str]:
    """An autocast context factory for inference on `device` and the precision it actually gives.

    auto: bf16 on a GPU that has it, else fp32 (CPUs without bf16 units only emulate it); bf16 is honoured on a
    CPU too (slow, but the numbers asked for); fp16 needs a GPU, as in training. `field` names the setting.
    """
    import torch

    cuda = device.type == "cuda"
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if precision == "auto":
        precision = "bf16" if bf16_ok else "fp32"
    if precision == "bf16" and cuda and not bf16_ok:
        raise NexaError(f"{field}: {torch.cuda.get_device_name(device)} has no bf16; use fp32")
    if precision == "fp16" and not cuda:
        raise NexaError(f"{field}=fp16 needs a CUDA GPU and {device} is not one; use fp32")
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        return contextlib.nullcontext, "fp32"
    return (lambda: torch.autocast(device.type, dtype=dtypes[precision])), precision


def training_device_args(device) -> dict:
    """TrainingArguments fields for the resolved device: `use_cpu` on the CPU, the GPU index otherwise."""
    if device.type == "cpu":
        return {"use_cpu": True}
    return {"use_cpu": False, "device_index": device.index}


@contextlib.contextmanager
def deterministic_on_cpu(device):
    """Deterministic torch algorithms while a CPU run trains (free there: same seed, same model), restored after.

    In place of HF's `full_determinism`, which also writes CUDA and NPU variables into os.environ for the rest of
    the process (CUDA_LAUNCH_BLOCKING would slow every later GPU step of the same process).
    """
    import torch

    enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
