"""The runbooks' query utility: list prepared dataset versions and read their splits as DataFrames.

    from nexa_core.data import DataQuery
    df = DataQuery().get_training_dataset()            # latest version, train split
    DataQuery().get_training_dataset("3f2a...", "all")  # every split, with a `split` column
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from nexa_core.config import StorageConfig
from nexa_core.data.prepare import LATEST, META
from nexa_core.data.splitting import SPLITS
from nexa_core.errors import NexaError
from nexa_core.layout import Layout

# Versions are hex content hashes; checking this before any path join keeps `../x` or `/etc` out of the tree.
_VERSION_RE = re.compile(r"^[0-9a-f]{1,64}$")


class DataQuery:
    def __init__(self, root: Optional[str | os.PathLike] = None):
        # StorageConfig() reads NEXA_SHARED when created, so the default follows the environment at call time.
        self.root = Path(root).expanduser() if root is not None else Layout.from_storage(StorageConfig()).datasets_dir

    def versions(self) -> list[str]:
        """Stored versions, oldest first (by created_at in dataset.json)."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            meta = child / META
            if _VERSION_RE.match(child.name) and meta.is_file():
                found.append((str(self._read_meta(meta).get("created_at", "")), child.name))
        return [name for _, name in sorted(found)]

    def resolve(self, version: str = "latest") -> str:
        """The full version id for "latest", a full id or a unique prefix of one."""
        if not isinstance(version, str) or not version.strip():
            raise NexaError(f"version: expected 'latest' or a hex version id, got {version!r}")
        version = version.strip().lower()
        if version == "latest":
            return self._latest()
        if not _VERSION_RE.match(version):
            raise NexaError(f"version: {version!r} is not a dataset version (hex id); available: {self._available()}")
        if (self.root / version / META).is_file():
            return version
        matches = [v for v in self.versions() if v.startswith(version)]
        if len(matches) != 1:
            why = "is ambiguous" if matches else "not found"
            raise NexaError(f"version: {version!r} {why} under {self.root}; available: {self._available()}")
        return matches[0]

    def info(self, version: str = "latest") -> dict[str, Any]:
        """The version's dataset.json: labels, counts, drop counts, source, created_at, columns used."""
        return self._read_meta(self.root / self.resolve(version) / META)

    def get_training_dataset(self, version: str = "latest", split: str = "train") -> pd.DataFrame:
        """One split (columns text, label, label_id), or split="all": every split with a `split` column."""
        if split not in (*SPLITS, "all"):
            raise NexaError(f"split: {split!r} is not a split; use one of {[*SPLITS, 'all']}")
        folder = self.root / self.resolve(version)
        if split != "all":
            return self._read_split(folder, split)
        frames = [self._read_split(folder, name).assign(split=name) for name in SPLITS]
        return pd.concat(frames, ignore_index=True)

    def _latest(self) -> str:
        pointer = self.root / LATEST
        if not pointer.is_file():
            raise NexaError(f"no prepared dataset under {self.root} (no {LATEST} file); run the data preparation first")
        version = pointer.read_text(encoding="utf-8").strip()
        if not _VERSION_RE.match(version) or not (self.root / version / META).is_file():
            raise NexaError(
                f"{pointer} names {version!r}, which is not a stored version; available: {self._available()}; "
                "prepare the data again"
            )
        return version

    def _available(self) -> str:
        return ", ".join(self.versions()) or f"none under {self.root}"

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise NexaError(f"{path}: unreadable ({err}); prepare the data again") from None

    @staticmethod
    def _read_split(folder: Path, split: str) -> pd.DataFrame:
        path = folder / f"{split}.parquet"
        if not path.is_file():
            raise NexaError(f"{path} is missing; the version folder is incomplete, prepare the data again")
        return pd.read_parquet(path)
