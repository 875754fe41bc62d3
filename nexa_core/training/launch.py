"""Multi-process training: a world size above 1 re-launches the trainer under torchrun, on one node or several.

The HF Trainer turns into DDP by itself inside torchrun workers (NCCL on GPUs, gloo on CPU). This module writes the
run's spec, starts node 0's torchrun agent through a launcher (a plain subprocess here; the Dagster trainer
resource's runs it through Dagster Pipes), waits, and reads rank 0's result from the run record. A failure names
every failed rank (nexa_core/training/agent.py). `python -m nexa_core.training.launch SPEC` is the workers' entry.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig, validate_config

log = logging.getLogger(__name__)


def in_worker() -> bool:
    return "LOCAL_RANK" in os.environ


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Processes of the running job, as torchrun tells its workers (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank() == 0


class SubprocessLauncher:
    """Runs node 0's agent as a plain child process; its workers run `entry` (a module taking the spec path)."""

    entry = "nexa_core.training.launch"

    def spec_fields(self, run_dir: Path) -> dict:  # what the workers need besides the config (Pipes: its files)
        return {}

    def run(self, command: list[str], env: dict[str, str]) -> int:
        return subprocess.run(command, env=env).returncode


def launch(cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout, launcher=None, **train_kwargs):
    from nexa_core.training.record import read_record, update_record
    from nexa_core.training.run import TrainResult
    from nexa_core.training.torchrun import agent_command, failure_summary, node_command, spec_path, worker_env, write_spec

    launcher = launcher or SubprocessLauncher()
    path = spec_path(layout, run_id)
    storage = train_kwargs.pop("storage", None)
    kwargs = {k: str(v) if isinstance(v, Path) else v for k, v in train_kwargs.items()}
    # Storage settings without any secret: the workers find credentials through the standard chain themselves.
    kwargs["storage"] = storage.public() if storage is not None else None
    spec = write_spec(cfg, path, run_id, entry=launcher.entry, payload={"dataset_dir": str(dataset_dir), "kwargs": kwargs},
                      extra=launcher.spec_fields(path.parent))
    update_record(path.parent, launch={"spec": str(path), **spec["torchrun"], "env": spec["env"]})
    if spec["torchrun"]["nnodes"] > 1:
        log.info("run %s is node 0 of %d; on every other node run: %s", run_id, spec["torchrun"]["nnodes"],
                 node_command(path))
    code = launcher.run(agent_command(spec, path, 0), worker_env(spec))
    if code != 0:
        why = failure_summary(path.parent) or f"torchrun exit code {code}; see the worker logs above"
        raise NexaError(f"distributed training of run {run_id} failed: {why}")
    record = read_record(layout.run_dir(run_id)) or {}
    if record.get("status") != "complete":
        raise NexaError(f"distributed training of run {run_id} ended without completing; re-run to resume it")
    return TrainResult(**record["train"])


def run_worker(spec_path: str, callbacks: list | None = None):
    """Train this worker's part of the run the spec describes; `callbacks` join rank 0's trainer (Pipes reporting)."""
    from nexa_core.storage.settings import StorageSettings
    from nexa_core.training.run import train

    spec = json.loads(Path(spec_path).read_text())
    cfg = validate_config(spec["config"])
    kwargs = spec.get("kwargs", {})
    kwargs["storage"] = StorageSettings.from_public(kwargs.get("storage"))
    if kwargs.get("pairs"):
        kwargs["pairs"] = Path(kwargs["pairs"])
    if kwargs.get("kd"):
        kwargs["kd"] = tuple(kwargs["kd"])
    return train(cfg, Path(spec["dataset_dir"]), spec["run_id"], Layout.from_storage(cfg.storage),
                 callbacks=callbacks, **kwargs)


if __name__ == "__main__":
    # `record` writes an exception's type, text and stack to torchrun's error file: the launcher names it per rank.
    from torch.distributed.elastic.multiprocessing.errors import record

    record(run_worker)(sys.argv[1])
