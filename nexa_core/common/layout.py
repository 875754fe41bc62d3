"""Where every artefact lives under the storage tiers (scratch, durable, shared)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nexa_core.common.run_ids import validate_run_id


class StorageRoots(Protocol):
    """The three storage tiers (config's `storage` section); a protocol so `common` needs no config import."""

    scratch: str
    durable: str
    shared: str


@dataclass(frozen=True)
class Layout:
    scratch: Path  # fast, disposable: checkpoints
    durable: Path  # kept: run folders, manifests, packages, deployments
    shared: Path  # shared between nodes: processed datasets

    @classmethod
    def from_storage(cls, storage: StorageRoots) -> Layout:
        return cls(*(Path(p).expanduser().resolve() for p in (storage.scratch, storage.durable, storage.shared)))

    @property
    def runs_dir(self) -> Path:
        return self.durable / "runs"

    @property
    def manifests_dir(self) -> Path:
        return self.runs_dir / "manifests"

    @property
    def packages_dir(self) -> Path:
        return self.durable / "packages"

    @property
    def deploy_dir(self) -> Path:
        return self.durable / "deploy"

    @property
    def datasets_dir(self) -> Path:
        return self.shared / "data" / "processed" / "training"

    @property
    def raw_drops_dir(self) -> Path:
        # Where new raw data files are dropped (data.drops.folder overrides it).
        return self.shared / "data" / "raw"

    @property
    def drops_dir(self) -> Path:
        # Processed drops: the seen-text index, per-drop rows and label-id parts (nexa_core/data/incremental.py).
        return self.datasets_dir.parent / "drops"

    @property
    def distill_dir(self) -> Path:
        # teacher_inputs/, teacher_outputs/ and distillation_pairs/ live next to the training datasets.
        return self.datasets_dir.parent / "distillation"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / validate_run_id(run_id)

    def checkpoints_dir(self, run_id: str) -> Path:
        return self.scratch / "runs" / validate_run_id(run_id) / "checkpoints"

    def manifest_path(self, run_id: str) -> Path:
        return self.manifests_dir / f"{validate_run_id(run_id)}.json"

    def package_path(self, run_id: str) -> Path:
        return self.packages_dir / f"{validate_run_id(run_id)}.tar.gz"
