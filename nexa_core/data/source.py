"""The raw source's content version (the recipe's data file, folder or hub id), so lineage and staleness start at
the source: the `training_source` observation reports it, and a changed file makes `training_dataset` stale."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file
from nexa_core.common.resolve import resolve_location
from nexa_core.config import DataConfig
from nexa_core.data.loading import describe_source, folder_files

VERSION_CHARS = 16


def source_version(cfg: DataConfig) -> tuple[str, dict]:
    """(content version, facts for the UI). A file's version is the start of its sha256 (`sha256sum` agrees); a
    folder's hashes each data file's name and sha256 in order; a hub dataset, unreachable offline, is versioned
    by its id alone (a new id, config or split is a new version)."""
    if not cfg.path:
        name = describe_source(cfg)
        return hashlib.sha256(name.encode("utf-8")).hexdigest()[:VERSION_CHARS], {"source": name, "kind": "hub"}
    path = Path(resolve_location(cfg.path, "data.path")).expanduser()
    if path.is_file():
        return sha256_file(path)[:VERSION_CHARS], {"source": cfg.path, "kind": "file", "path": str(path),
                                                   "bytes": path.stat().st_size}
    if not path.is_dir():
        raise NexaError(f"data.path: {path} does not exist; point data.path at a data file or a folder of them")
    files = folder_files(path)
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{sha256_file(file)}\n".encode())
    return digest.hexdigest()[:VERSION_CHARS], {"source": cfg.path, "kind": "folder", "path": str(path),
                                                "files": len(files), "bytes": sum(f.stat().st_size for f in files)}
