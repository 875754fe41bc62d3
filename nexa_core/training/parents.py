"""What a run was made from, recorded under `lineage` in its run.json at every training start: the dataset version
and where it came from, the raw source's content version, the base model, the code commit and the environment.

The distillation steps add a student's parents (teacher, teacher outputs, input set, pairs, KD settings) and a
teacher's role to the same key before training begins; this builder keeps those and refreshes the rest, so a
resumed run records the attempt that finished it. `nexa lineage` and `nexa reproduce` read it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from nexa_core.common.errors import NexaError
from nexa_core.common.resolve import resolve_location
from nexa_core.config import DataConfig, NexaConfig
from nexa_core.training.record import read_record

KEY = "lineage"
# Hashing the raw source at every training start is cheap for a file of a few MB, not for a corpus: above this
# the content version is left out (the dataset version, a hash of the prepared rows, still pins the data).
RAW_HASH_LIMIT = 256 * 2**20


def training_lineage(cfg: NexaConfig, dataset_dir: Path, init_from: Optional[str], run_dir: Path) -> dict[str, Any]:
    """The run's `lineage`: what the caller recorded before training, plus this attempt's data, model and code.
    Reads `environment.json` from `run_dir` (record_environment writes it first)."""
    existing = (read_record(run_dir) or {}).get(KEY) or {}
    info = _read_json(Path(dataset_dir) / "dataset.json")
    environment = _read_json(Path(run_dir) / "environment.json")
    git = environment.get("git") or {}
    return {
        **existing,
        "role": existing.get("role", "trained"),
        "dataset": {"version": info.get("version"), "path": str(dataset_dir), "source": info.get("source"),
                    "line": info.get("line")},
        "raw_source": raw_source(cfg.data, info.get("source")),
        "base_model": base_model(cfg, init_from),
        "code": {"commit": git.get("commit"), "dirty": git.get("dirty")},
        "environment_fingerprint": environment.get("fingerprint"),
    }


def base_model(cfg: NexaConfig, init_from: Optional[str]) -> dict[str, Any]:
    """The weights training started from: the recipe's model (hub id or folder, at its revision), or a student's
    init folder (the distillation step records which teacher it was cut from)."""
    if init_from:
        return {"init_from": str(init_from)}
    return {"name_or_path": cfg.model.name_or_path, "revision": cfg.model.revision}


def raw_source(data: DataConfig, dataset_source: Optional[str]) -> dict[str, Any]:
    """The raw data's content version when the dataset was prepared from the recipe's own source and hashing it
    is cheap; otherwise the source's name with the reason its content version is absent."""
    from nexa_core.data.loading import describe_source

    if dataset_source != describe_source(data):
        return {"source": dataset_source, "content_version": None,
                "note": "the dataset was not prepared from the recipe's data source (e.g. data drops)"}
    try:
        size = _source_bytes(data)
        if size > RAW_HASH_LIMIT:
            return {"source": dataset_source, "content_version": None,
                    "note": f"not hashed: {size} bytes is over {RAW_HASH_LIMIT}"}
        from nexa_core.data.source import source_version

        version, facts = source_version(data)
    except (NexaError, OSError) as err:
        return {"source": dataset_source, "content_version": None, "note": f"not readable now: {err}"}
    return {"source": dataset_source, "content_version": version, "kind": facts.get("kind")}


def _source_bytes(data: DataConfig) -> int:
    if not data.path:
        return 0  # a hub dataset is versioned by its id: nothing to read
    from nexa_core.data.loading import folder_files

    path = Path(resolve_location(data.path, "data.path")).expanduser()
    if path.is_dir():
        return sum(f.stat().st_size for f in folder_files(path))
    return path.stat().st_size


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
