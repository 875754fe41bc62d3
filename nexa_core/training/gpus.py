"""One GPU per concurrent step on a multi-GPU node.

The `gpu` pool admits as many steps at once as the node has GPUs, but it does not say which GPU a step holds:
with `training.device` `auto` or `cuda` every step would land on cuda:0. `gpu_lease` gives the step a GPU that no
other step on this node holds (a lock file per GPU under the node-local scratch root, released when the step ends
or its process dies, even by SIGKILL) and pins `training.device` to it. A device the recipe already pins
(`cuda:N`, `cpu`) is left alone, and so is a node with one GPU or none."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nexa_core.common.locks import FileLock
from nexa_core.config import NexaConfig, validate_config

log = logging.getLogger(__name__)
POLL_S = 2.0


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@contextmanager
def gpu_lease(cfg: NexaConfig, folder: Path, count: int | None = None) -> Iterator[NexaConfig]:
    """`cfg` with `training.device` pinned to a GPU leased for the block (unchanged when nothing is to choose)."""
    # A torchrun job (several processes) gives each worker the GPU of its local rank: nothing to lease or pin.
    if cfg.training.device not in ("auto", "cuda") or cfg.training.distributed.declares_several():
        yield cfg
        return
    count = visible_gpus() if count is None else count
    if count <= 1:
        yield cfg
        return
    folder.mkdir(parents=True, exist_ok=True)
    warned = False
    while True:
        for index in range(count):
            lock = FileLock(folder / f"cuda{index}.lock")
            if lock.acquire(block=False):
                try:
                    raw = cfg.model_dump(mode="json")
                    raw["training"]["device"] = f"cuda:{index}"
                    yield validate_config(raw)
                finally:
                    lock.release()
                return
        if not warned:  # more steps than GPUs: the pool is sized above the node's GPUs
            log.warning("all %d GPUs of this node are leased by other steps; waiting for one (size the gpu pool to "
                        "the GPUs: dagster instance concurrency set gpu %d)", count, count)
            warned = True
        time.sleep(POLL_S)
