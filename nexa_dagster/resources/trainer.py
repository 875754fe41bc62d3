"""GPUTrainerResource: where the steps that train or infer run on this node (CPU or one GPU), and how a
distributed run's torchrun is started (through Dagster Pipes)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig, validate_config
from nexa_core.storage.settings import StorageSettings
from nexa_dagster.resources.torchrun_pipes import PipesTorchrunLauncher


class GPUTrainerResource(dg.ConfigurableResource):
    """Where and how training and inference run; the recipe's `training` section says what is trained.

    `device` overrides the recipe's `training.device` for every asset that trains or infers (teacher, teacher
    outputs, trained model, student, evaluations): assets call `apply` on their config. The GPU is chosen by
    index inside the step; the process environment (CUDA_VISIBLE_DEVICES) is never changed.
    """

    device: str = "auto"  # "auto": the recipe's training.device; else cpu, cuda or cuda:N for every step

    def apply(self, cfg: NexaConfig) -> NexaConfig:
        """The config with this resource's device in `training.device` (unchanged for "auto")."""
        if self.device == "auto":
            return cfg
        raw = cfg.model_dump(mode="json")
        raw["training"]["device"] = self.device
        try:
            return validate_config(raw)
        except NexaError as err:
            raise dg.Failure(description=f"GPUTrainerResource.device: {err}") from None

    @contextmanager
    def gpu(self, cfg: NexaConfig, layout: Layout) -> Iterator[NexaConfig]:
        """`cfg` on a GPU of its own for the block: on a node with several GPUs, steps the `gpu` pool (or a Celery
        worker's concurrency) admits together each lease a different one (nexa_core/training/gpus.py)."""
        from nexa_core.training.gpus import gpu_lease

        with gpu_lease(self.apply(cfg), layout.scratch / "gpu-leases") as leased:
            yield leased

    def train(self, cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout,
              storage: StorageSettings | None = None, launcher: PipesTorchrunLauncher | None = None):
        """Train the run on this resource's device; each new best checkpoint goes to the durable store of
        `storage` (the storage resource's settings). When the recipe asks for several processes
        (training.distributed), `launcher` (from `launcher(context)`) starts torchrun through Dagster Pipes."""
        from nexa_core.training.steps import train_run

        return train_run(self.apply(cfg), dataset_dir, run_id, layout, storage=storage, launcher=launcher)

    def launcher(self, context: dg.AssetExecutionContext) -> PipesTorchrunLauncher:
        """Node 0's torchrun through a Pipes session of this step: rank 0 reports logs, metrics and the
        materialization's metadata (`reported_metadata()` after training; {} for a one-process run)."""
        return PipesTorchrunLauncher(context)
