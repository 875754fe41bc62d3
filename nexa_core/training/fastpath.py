"""The GPU fast path: what `auto` means for precision, tf32, the optimizer and data loading, decided once.

`resolve_fast_path` is pure: it takes the training settings and the device's properties (`Hardware`, read from
torch by `hardware`), so every answer can be checked without the GPU it describes. On the CPU every `auto`
resolves to what the defaults were before they existed (fp32, no tf32, adamw_torch, no loader workers), so a CPU
run trains exactly as it did. Refusals are one line naming the field and the fix.

What is not decided here: attention. transformers 5 loads every model that supports it with PyTorch SDPA
(`attn_implementation=None` means "sdpa, else eager"), so nothing is passed; the implementation in use is read
off the loaded model (`attention_of`) and recorded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from nexa_core.common.errors import NexaError
from nexa_core.config import TrainingConfig

GPU_LOADER_WORKERS = 4  # enough to keep a collator of pre-tokenised rows ahead of one GPU; capped by the cores


@dataclass(frozen=True)
class Hardware:
    """What the resolution needs to know about the training device."""

    cuda: bool
    bf16: bool = False  # bf16 tensor cores (Ampere or newer)
    capability: tuple[int, int] = (0, 0)  # CUDA compute capability; tf32 needs 8.0 or more
    name: str | None = None
    cpus: int = 1


@dataclass(frozen=True)
class FastPath:
    """The resolved choices a run trains with; `record()` is what run.json and the asset metadata show."""

    precision: str  # fp32, fp16 or bf16
    tf32: bool
    optimizer: str
    compile: bool
    loader_workers: int
    pin_memory: bool

    def record(self, attention: str | None = None) -> dict:
        return {**asdict(self), **({"attention": attention} if attention else {})}


def hardware(device) -> Hardware:
    """The properties of a resolved torch device (nexa_core.training.device.resolve_device)."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type != "cuda":
        return Hardware(cuda=False, cpus=cpus)
    capability = tuple(torch.cuda.get_device_capability(device))
    # is_bf16_supported() asks the current device; the capability is the chosen one's (bf16 from Ampere, 8.0).
    return Hardware(cuda=True, bf16=capability[0] >= 8, capability=capability,
                    name=torch.cuda.get_device_name(device), cpus=cpus)


def resolve_fast_path(t: TrainingConfig, hw: Hardware) -> FastPath:
    """The precision, tf32, optimizer and loader settings `t` means on `hw`; refuses what `hw` cannot run."""
    precision = t.precision if t.precision != "auto" else ("bf16" if hw.bf16 else "fp32")
    if precision == "fp16" and not hw.cuda:
        raise NexaError("training.precision=fp16 needs a CUDA GPU and training runs on the CPU here; "
                        "set training.precision=fp32 or auto")
    if precision == "bf16" and not hw.bf16:
        where = "this GPU lacks bf16 (needs Ampere or newer)" if hw.cuda else "training runs on the CPU"
        raise NexaError(f"training.precision=bf16 is not supported here: {where}; set training.precision=auto, "
                        "fp32 or fp16")
    ampere = hw.cuda and hw.capability[0] >= 8
    tf32 = str(t.tf32).lower()
    if tf32 == "true" and not ampere:
        raise NexaError("training.tf32=true needs an Ampere or newer CUDA GPU; set training.tf32=auto or false")
    optimizer = t.optimizer.name
    if optimizer == "auto":
        optimizer = "adamw_torch_fused" if hw.cuda else "adamw_torch"
    workers = t.dataloader_workers
    if workers is None:
        workers = min(GPU_LOADER_WORKERS, max(hw.cpus - 1, 0)) if hw.cuda else 0
    if t.packing:
        raise NexaError(packing_refusal())
    return FastPath(precision=precision, tf32=tf32 == "true" or (tf32 == "auto" and ampere), optimizer=optimizer,
                    compile=t.compile, loader_workers=workers, pin_memory=hw.cuda)


def packing_refusal() -> str:
    """Why padding-free packing is refused: packed rows need a model that keeps them apart, which ours are not."""
    # A classifier pools each row's first token and BERT's SDPA/eager attention takes no per-row boundaries, so
    # packed rows would attend to each other; HF's DataCollatorWithFlattening is for causal LMs on flash attention.
    return ("training.packing=true: padding-free packing needs a causal LM on flash attention, and this trainer's "
            "models (classifiers pool each row's first token; BERT attention would mix packed rows) cannot use it; "
            "set training.packing=false (length grouping already keeps padding low)")


def attention_of(model) -> str | None:
    """The attention implementation a loaded transformers model runs (sdpa, eager, flash_attention_2, ...)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None)


def fast_path_for(t: TrainingConfig, device) -> FastPath:
    """`resolve_fast_path` for a resolved torch device."""
    return resolve_fast_path(t, hardware(device))
