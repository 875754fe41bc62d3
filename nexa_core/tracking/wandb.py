"""Weights & Biases: one W&B run per training run, rank 0 only, from our own callback.

Our own callback rather than transformers' `WandbCallback`, which reads its project, run name and model upload
from WANDB_* environment variables and resumes nothing: here the settings come from `tracking.wandb`, the run's
W&B id is fixed per run folder (a resumed training continues its W&B run online), and the config goes through the
same scrubbing as MLflow params. W&B is fail-soft: if it cannot start (bad key, no network) or stops accepting
data, training goes on and the problem is reported once. The API key is read by wandb itself from WANDB_API_KEY;
we never log or pass it."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from transformers import TrainerCallback

from nexa_core.config import WandbConfig
from nexa_core.telemetry.secrets import redact
from nexa_core.tracking.series import scalars

log = logging.getLogger(__name__)


def mode(cfg: WandbConfig, environ=None) -> str:
    """tracking.wandb.mode, else WANDB_MODE, else online with an API key and offline without one."""
    env = os.environ if environ is None else environ
    return (cfg.mode if cfg.mode != "auto" else None) or env.get("WANDB_MODE") or ("online" if env.get("WANDB_API_KEY") else "offline")


def wandb_id(run_id: str, run_dir: Path) -> str:
    """Stable for a run folder, so a resumed training continues its W&B run; the folder's hash keeps two runs with
    the same id in different storage roots (CI reusing a fixed run id) from resuming each other."""
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:8]
    return f"{run_id}-{digest}"


class WandbLog(TrainerCallback):
    def __init__(self, cfg: WandbConfig, run_dir: Path, run_id: str, params: dict | None = None):
        self.cfg, self.run_dir, self.run_id, self.params = cfg, Path(run_dir), run_id, params or {}
        self.run = None  # the wandb Run; None before train begins, and after W&B failed or finished
        self._warned = False

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.run is None:
            self.run = self._start()

    def _start(self):
        try:
            import wandb

            return wandb.init(
                project=self.cfg.project, name=self.run_id, id=wandb_id(self.run_id, self.run_dir), resume="allow",
                dir=str(self.run_dir), mode=mode(self.cfg), config=self.params,
                reinit="create_new",  # its own run object: a run left open by a crashed training blocks nothing
                # No stdout capture: it would wrap the streams Dagster and pytest capture.
                settings=wandb.Settings(console="off"),
            )
        except Exception as err:  # any W&B failure: training goes on without it
            self._warn("cannot start", err)
            return None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.run is None or not state.is_world_process_zero:
            return
        values = scalars(logs)
        # A resumed online run already holds the steps its earlier attempt logged past the checkpoint; W&B refuses
        # steps below its current one (with a warning each), so those are skipped rather than sent.
        if not values or state.global_step < (getattr(self.run, "step", 0) or 0):
            return
        try:
            self.run.log(values, step=state.global_step)
        except Exception as err:
            self._warn("stopped accepting data", err)
            self.run = None

    def on_train_end(self, args, state, control, **kwargs):
        if self.run is None:
            return
        try:
            self.run.finish()
        except Exception as err:
            self._warn("did not finish cleanly", err)
        self.run = None

    def _warn(self, what: str, err: Exception) -> None:
        if self._warned:
            return
        self._warned = True
        message = redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        log.warning("W&B %s (%s); training goes on without W&B (tracking.wandb)", what, message)
