"""Claiming a run id and training it: the one place the CLI, the distillation steps and the assets do both."""

from __future__ import annotations

import time
from pathlib import Path

from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import new_run_id, validate_run_id
from nexa_core.config import NexaConfig
from nexa_core.storage.settings import StorageSettings


def claim_run(cfg: NexaConfig, dataset_version: str, layout: Layout, run_id: str | None = None, *,
              name: str | None = None, **work: object) -> tuple[str, bool]:
    """Pick the run id: the one asked for, else an unfinished run of the same work (resume), else a new one.

    `work` holds what else defines the run besides the config (a student's init, pairs and KD settings)."""
    from nexa_core.training.record import find_unfinished_run, work_key

    if run_id:
        validate_run_id(run_id)
        return run_id, layout.run_dir(run_id).exists()
    unfinished = find_unfinished_run(layout.runs_dir, work_key(cfg, dataset_version, **work))
    if unfinished:
        return unfinished, True
    run_id = new_run_id(name or cfg.name)
    while layout.run_dir(run_id).exists():  # two runs in one second: take the next free second
        time.sleep(1)
        run_id = new_run_id(name or cfg.name)
    return run_id, False


def train_run(cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout, *,
              storage: StorageSettings | None = None, **student):
    """Train the run, pushing each new best checkpoint to the durable store of `storage` (None: the settings
    from the environment, as the CLI uses them; the Dagster assets pass their storage resource's)."""
    from nexa_core.training import train

    storage = storage if storage is not None else StorageSettings.from_env()
    return train(cfg, Path(dataset_dir), run_id, layout, storage=storage, **student)
