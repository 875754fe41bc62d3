"""The search space: dotted config keys under `model` and `training` with numeric ranges, checked before a study
starts, and the recipe a point of it becomes."""

from __future__ import annotations

import copy
import typing
from typing import Any

from pydantic import BaseModel

from nexa_core.common.errors import NexaError
from nexa_core.config import NexaConfig, SearchParam, validate_config

# The dataset is prepared once per study from the recipe: a key that changes the data (or its split seed) would
# give trials different validation sets, and their metrics could not be compared.
SEARCHABLE = ("model.", "training.")
FIXED = ("training.distributed.seed", "training.device", "training.distributed.world_size",
         "training.distributed.nodes", "training.distributed.nproc_per_node")


def default_space(cfg: NexaConfig) -> list[SearchParam]:
    """The learning rate a decade either way (log), and the dropout around the model's (0.1 when unset: BERT's)."""
    lr = cfg.training.optimizer.lr
    dropout = cfg.model.dropout or 0.1
    return [SearchParam(key="training.optimizer.lr", low=lr / 10, high=min(lr * 10, 1.0), log=True),
            SearchParam(key="model.dropout", low=dropout / 2, high=min(dropout * 2, 0.9))]


def search_space(cfg: NexaConfig) -> list[SearchParam]:
    return list(cfg.tune.space) or default_space(cfg)


def check_space(raw: dict[str, Any], space: list[SearchParam]) -> None:
    """One-line NexaError naming the key for an unknown, non-numeric or fixed key, an empty or inverted range, a
    log range reaching 0, or an end of the range the config itself refuses (dropout 1.5)."""
    if not space:
        raise NexaError("tune.space: empty; list at least one {key, low, high} or leave it unset for the default")
    seen = set()
    for i, p in enumerate(space):
        where = f"tune.space[{i}] {p.key}"
        if p.key in seen:
            raise NexaError(f"{where}: given twice; keep one range per key")
        seen.add(p.key)
        if not p.key.startswith(SEARCHABLE) or p.key in FIXED:
            raise NexaError(f"{where}: only model.* and training.* keys are searched (not the data, its split seed, "
                            "the device or world size, which every trial shares)")
        numeric_kind(p.key)
        if not p.low < p.high:
            raise NexaError(f"{where}: empty or inverted range (low {p.low} must be below high {p.high})")
        if p.log and p.low <= 0:
            raise NexaError(f"{where}: a log range needs low > 0 (got {p.low}); raise low or set log: false")
        for end in (p.low, p.high):
            try:
                validate_config(apply_params(raw, {p.key: cast(p.key, end)}))
            except NexaError as err:
                raise NexaError(f"{where}: {end} is refused by the config ({err}); narrow the range") from None


def numeric_kind(key: str) -> type:
    """int or float: the type of the config field at `key`; NexaError for an unknown or non-numeric key."""
    model: type[BaseModel] = NexaConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            raise NexaError(f"tune.space: {key} is not a config key ({'.'.join(parts[:depth + 1])} unknown); see "
                            "configs/default.yaml for the keys")
        kinds = [a for a in (typing.get_args(field.annotation) or (field.annotation,)) if a is not type(None)]
        kind = kinds[0] if len(kinds) == 1 else None
        if depth < len(parts) - 1:
            if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
                raise NexaError(f"tune.space: {key} is not a config key ({'.'.join(parts[:depth + 1])} is a value)")
            model = kind
    if kind not in (int, float):
        raise NexaError(f"tune.space: {key} is not numeric ({field.annotation}); only int and float keys are searched")
    return kind


def cast(key: str, value: float) -> int | float:
    return int(round(value)) if numeric_kind(key) is int else float(value)


def apply_params(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The recipe with each dotted key set to its value (values set as they are: no YAML round trip)."""
    out = copy.deepcopy(raw)
    for key, value in params.items():
        node = out
        *sections, last = key.split(".")
        for part in sections:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def suggest(trial, space: list[SearchParam]) -> dict[str, int | float]:
    """Draw one point, in the space's order (the order is part of what the seed reproduces)."""
    params = {}
    for p in space:
        if numeric_kind(p.key) is int:
            params[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log)
        else:
            params[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log)
    return params
