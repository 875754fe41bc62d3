"""`tune:` — the hyperparameter search section (SearchParam, TuneConfig), kept apart from nexa_core.config to keep
that file small; nexa_core.config re-exports both, so `from nexa_core.config import TuneConfig` still works."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from nexa_core.common.section import Section as _Section


class SearchParam(_Section):
    """One dimension of a hyperparameter search: a numeric config key and the range its values are drawn from."""

    key: str  # dotted config key under model or training, e.g. training.optimizer.lr
    low: float
    high: float
    log: bool = False  # draw uniformly in log space (learning rates); needs low > 0


class TuneConfig(_Section):
    """`nexa tune`: an Optuna study whose trials are ordinary runs (docs/tuning.md)."""

    study: Optional[str] = None  # the study's name in the database; unset: `<name>-tune`. Same name: resumed
    # SQLAlchemy URL of the study database; unset: sqlite:///<storage.durable>/tuning/studies.db. PostgreSQL
    # (postgresql+psycopg2://user@host/db) when trials run on several machines.
    storage: Optional[str] = None
    max_trials: int = Field(default=5, ge=1)  # trials in the study in total, counting earlier runs of it
    seed: Optional[int] = None  # unset: training.distributed.seed. Trial N draws from seed + N: reproducible
    sampler: Literal["random", "tpe"] = "random"  # tpe runs with constant_liar, so parallel trials spread out
    pruner: Literal["none", "median", "successive_halving"] = "none"
    pruner_startup_trials: int = Field(default=2, ge=0)  # median: trials finished before any is pruned
    # median: no trial is pruned at a step below this (its first validations are near-chance noise); 0: from the first
    pruner_warmup_steps: int = Field(default=0, ge=0)
    metric: Literal["accuracy", "macro_f1", "loss"] = "accuracy"  # validation metric; loss minimised, others maximised
    # Empty: training.optimizer.lr in [lr/10, lr*10] (log) and model.dropout around the model's (0.05..0.2).
    space: list[SearchParam] = []
    heartbeat_s: int = Field(default=30, ge=1)  # how often a running trial tells the database it is alive
    # A RUNNING trial silent this long is failed by the next `nexa tune`, whatever its host; several beats: blips pass
    stale_after_s: int = Field(default=300, ge=2, validate_default=True)

    @field_validator("stale_after_s")
    @classmethod
    def _after_beats(cls, value: int, info) -> int:
        if value <= info.data.get("heartbeat_s", 0):
            raise ValueError(f"must exceed tune.heartbeat_s ({info.data['heartbeat_s']}); set it to several beats")
        return value
