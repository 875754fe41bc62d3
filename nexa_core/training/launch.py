"""Multi-process training: `training.distributed.world_size > 1` re-launches the trainer under torchrun.

The HF Trainer turns into DDP by itself inside torchrun workers (NCCL on GPUs, gloo on CPU); this
module only starts the workers, waits, and reads rank 0's result from the run record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig, validate_config


def in_worker() -> bool:
    return "LOCAL_RANK" in os.environ


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def launch(cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout, **train_kwargs):
    from nexa_core.training.record import read_record
    from nexa_core.training.run import TrainResult

    spec = layout.checkpoints_dir(run_id).parent / "launch.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    storage = train_kwargs.pop("storage", None)
    kwargs = {k: str(v) if isinstance(v, Path) else v for k, v in train_kwargs.items()}
    # Storage settings without any secret: the workers find credentials through the standard chain themselves.
    kwargs["storage"] = storage.public() if storage is not None else None
    spec.write_text(json.dumps({"config": cfg.model_dump(mode="json"), "dataset_dir": str(dataset_dir),
                                "run_id": run_id, "kwargs": kwargs}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={cfg.training.distributed.world_size}", "-m", "nexa_core.training.launch", str(spec)]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if proc.returncode != 0:
        raise NexaError(f"distributed training of run {run_id} failed (torchrun exit {proc.returncode}); see the "
                        "worker logs above, or set training.distributed.world_size=1")
    record = read_record(layout.run_dir(run_id)) or {}
    if record.get("status") != "complete":
        raise NexaError(f"distributed training of run {run_id} ended without completing; re-run to resume it")
    return TrainResult(**record["train"])


def _worker(spec_path: str) -> None:
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
    train(cfg, Path(spec["dataset_dir"]), spec["run_id"], Layout.from_storage(cfg.storage), **kwargs)


if __name__ == "__main__":
    _worker(sys.argv[1])
