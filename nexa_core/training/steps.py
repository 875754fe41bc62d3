"""Claiming a run id and training it: the one place the CLI, the distillation steps and the assets do both."""

from __future__ import annotations

from pathlib import Path

from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig
from nexa_core.storage.settings import StorageSettings
from nexa_core.training.claim import RunClaim, claim_run

__all__ = ["RunClaim", "claim_run", "train_run"]


def train_run(cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout, *,
              storage: StorageSettings | None = None, callbacks: list | None = None, launcher=None, **student):
    """Train the run, pushing each new best checkpoint to the durable store of `storage` (None: the settings
    from the environment, as the CLI uses them; the Dagster assets pass their storage resource's)."""
    from nexa_core.training import train

    storage = storage if storage is not None else StorageSettings.from_env()
    return train(cfg, Path(dataset_dir), run_id, layout, storage=storage, callbacks=callbacks, launcher=launcher,
                 **student)
