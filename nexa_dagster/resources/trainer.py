"""GPUTrainerResource: runs the core trainer on this node (CPU or one GPU)."""

from pathlib import Path

import dagster as dg

from nexa_core.config import NexaConfig
from nexa_core.common.layout import Layout
from nexa_core.storage.settings import StorageSettings

class GPUTrainerResource(dg.ConfigurableResource):
    """Where and how training runs; the recipe's `training` section says what is trained."""

    device: str = "auto"  # "auto" (a GPU if visible), "cpu" to force CPU even on a GPU node

    def train(self, cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout,
              storage: StorageSettings | None = None):
        """Train the run; each new best checkpoint goes to the durable store of `storage` (the storage resource's)."""
        import os

        from nexa_core.training.steps import train_run

        if self.device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # hide GPUs before torch initialises CUDA
        return train_run(cfg, dataset_dir, run_id, layout, storage=storage)
