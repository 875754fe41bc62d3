"""Checks that need neither weights nor data, made before anything is written or launched: the device, the precision
on it, the GPUs a distributed run needs, the model folder, and `model.max_length` against the model's positions.

They are the checks the steps themselves would fail on later, made early: a refusal here leaves no run folder, no
dataset version and no torchrun workers (each of which would print its own traceback).
"""

from __future__ import annotations

from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.resolve import resolve_location
from nexa_core.config import NexaConfig
from nexa_core.tracking.loggers import check_loggers
from nexa_core.training.models import first_line, load_errors, load_tokenizer


def model_config(location: str, revision: str | None = None, field: str = "model.name_or_path"):
    """The model's config (config.json only, no weights); a missing folder or an unloadable config is one line."""
    from transformers import AutoConfig

    path = resolve_location(location, field)
    if location.startswith(("/", ".", "~")):  # a folder, never a hub id (the hub would answer "repo id must be ...")
        path = str(Path(path).expanduser())
        if not Path(path).exists():
            raise NexaError(f"{field}: {path} does not exist; point it at a model folder or a hub id")
    try:
        return AutoConfig.from_pretrained(path, revision=revision)
    except load_errors() as err:
        raise NexaError(f"{field}: cannot load {location!r} ({first_line(err)}); point it at a complete model "
                        "folder or a hub id") from None


def positions(config) -> int | None:
    """How many token positions the model has; None when its config declares none."""
    # `max_position_embeddings` is the common name; transformers maps GPT-2's `n_positions` onto it.
    value = getattr(config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def check_max_length(config, max_length: int, location: str, field: str = "model.max_length") -> None:
    """A max_length beyond the model's positions passes tokenisation and crashes in the first long batch."""
    limit = positions(config)
    if limit is not None and max_length > limit:
        raise NexaError(f"{field}={max_length}: {location} has only {limit} positions (max_position_embeddings); "
                        f"set {field}={limit} or less")


def check_training(cfg: NexaConfig, init_from: str | None = None, field: str = "model.name_or_path", *,
                   revision: str | None = None):
    """Everything about a training run that can be refused without data; returns (the resolved device, the model
    config). `init_from`: the model trained instead of model.name_or_path (`field` names where it came from;
    `revision` its hub revision, model.revision by default, as `train` loads it)."""
    from nexa_core.tracking.settings import check_tracking
    from nexa_core.training.device import resolve_device
    from nexa_core.training.fastpath import fast_path_for

    t = cfg.training
    device = resolve_device(t.device)
    fast_path_for(t, device)  # precision, tf32 and packing the device cannot run are refused here
    workers, per_node = t.processes(), t.distributed.per_node(t.device)
    if device.type == "cuda" and per_node > 1:
        import torch

        count = torch.cuda.device_count()
        if per_node > count:  # each torchrun worker takes the GPU of its local rank on its node
            field = "nproc_per_node" if t.distributed.nproc_per_node is not None else "world_size"
            raise NexaError(f"training.distributed.{field}: {per_node} processes on this node but only {count} "
                            f"GPU(s) visible; set training.distributed.nproc_per_node={count} (or auto), or "
                            "training.device=cpu")
    if cfg.data.shards > 1:  # N a multiple of W, so each rank can own whole shards (nexa_core/data/shards.py)
        from nexa_core.data.shards import rank_shards

        rank_shards(cfg.data.shards, workers, 0)
    source = init_from or cfg.model.name_or_path
    config = model_config(source, revision or cfg.model.revision, field)
    check_max_length(config, cfg.model.max_length, source)
    load_tokenizer(source, revision or cfg.model.revision, field)  # small files; the weights stay unread
    check_tracking(cfg)  # an unreachable server or a foreign registry name, before any run folder is written
    check_loggers(cfg)  # a logger switched on that cannot work (wandb not installed)
    return device, config


def check_distill(cfg: NexaConfig, teacher: str | None = None) -> None:
    """`nexa distill`: the training checks for the teacher (pinned, or trained from model.name_or_path) and the
    student made from its layers, which shares its positions; a causal teacher must also fit one prompt token
    plus distill.max_new_tokens. `teacher`: where the pinned distill.teacher is read from (its downloaded copy)."""
    teacher = teacher or cfg.distill.teacher
    # A pinned teacher is fetched without model.revision (that pins model.name_or_path, which it replaces).
    _, config = check_training(cfg, teacher, "distill.teacher", revision="main") if teacher else check_training(cfg)
    limit, tokens = positions(config), cfg.distill.max_new_tokens
    if cfg.distill.kind == "causal_lm" and limit is not None and tokens >= limit:
        raise NexaError(f"distill.max_new_tokens={tokens}: {teacher or cfg.model.name_or_path} has only {limit} "
                        f"positions for the prompt and the completion together; set distill.max_new_tokens below {limit}")
