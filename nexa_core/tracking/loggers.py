"""The metric loggers a training run writes to besides its own JSONL log: TensorBoard and W&B. Importing this
module is cheap (no transformers, no wandb): the preflight uses it before anything heavy loads.

`check_loggers` runs in the training preflight, before anything is written: a logger that is switched on but cannot
work is one line naming its setting. `logger_callbacks` builds the enabled ones for the main process."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.config import NexaConfig, WandbConfig
from nexa_core.tracking.params import config_params, flatten, scrub

log = logging.getLogger(__name__)
WANDB_FIX = "pip install 'nexacompute[wandb]'"


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def wandb_wanted(cfg: WandbConfig, environ=None) -> bool:
    """`auto`: on when WANDB_API_KEY is set or WANDB_MODE=offline; `true` / `false`: always / never."""
    env = os.environ if environ is None else environ
    if cfg.enabled != "auto":
        return cfg.enabled == "true"
    return bool(env.get("WANDB_API_KEY")) or env.get("WANDB_MODE") == "offline"


def check_loggers(cfg: NexaConfig) -> None:
    t = cfg.tracking
    if t.tensorboard.enabled and not _installed("tensorboard"):
        raise NexaError("tracking.tensorboard.enabled=true: the tensorboard package is not installed; "
                        "pip install tensorboard or set tracking.tensorboard.enabled=false")
    if t.wandb.enabled == "true" and not _installed("wandb"):
        raise NexaError(f"tracking.wandb.enabled=true: the wandb package is not installed; {WANDB_FIX} "
                        "or set tracking.wandb.enabled=false")


def logger_callbacks(cfg: NexaConfig, run_dir: Path, run_id: str) -> list:
    """TrainerCallbacks for the enabled loggers (the main process only: call it where rank 0 builds callbacks)."""
    t = cfg.tracking
    callbacks = []
    use_wandb = wandb_wanted(t.wandb)
    if use_wandb and not _installed("wandb"):  # `auto` with a key set but no package: say so, do not refuse
        log.warning("WANDB_API_KEY is set but wandb is not installed: not logging to W&B (%s, or set "
                    "tracking.wandb.enabled=false)", WANDB_FIX)
        use_wandb = False
    if not (t.tensorboard.enabled or use_wandb):
        return callbacks
    config = cfg.model_dump(mode="json")
    if t.tensorboard.enabled:
        from nexa_core.tracking.tensorboard import TensorBoardLog

        callbacks.append(TensorBoardLog(Path(run_dir) / "tensorboard", config_params(config)))
    if use_wandb:
        from nexa_core.tracking.wandb import WandbLog

        # W&B keeps types (numbers sort and filter in its run table): the same scrubbing as params, not their text.
        callbacks.append(WandbLog(t.wandb, Path(run_dir), run_id, flatten(scrub(config))))
    return callbacks
