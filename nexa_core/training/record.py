"""The run record (`run.json` beside the run): status, the key that identifies the work, and results.

A materialization that crashed leaves a record with status `running`; the next one with the same key
finds it and resumes that run from its last checkpoint instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nexa_core.common.atomic import atomic_write_json
from nexa_core.config import NexaConfig

RECORD = "run.json"


def work_key(cfg: NexaConfig, dataset_version: str, init_from=None, pairs=None, kd=None) -> str:
    """Everything that determines the trained weights; storage locations and evaluation gates do not."""
    # training.device is where, not what: a run resumes (and a teacher is reused) on another device, and the
    # keys of runs made before the setting existed still match.
    # model.dropout counts only when set, for the same reason: unset, the keys of earlier runs are unchanged.
    exclude = {"training": {"device", "distributed"}} | ({"model": {"dropout"}} if cfg.model.dropout is None else {})
    dump = cfg.model_dump(include={"model": True, "training": True}, exclude=exclude)
    payload = _as_before_fast_path(dump) | {
        "dataset_version": dataset_version, "init_from": str(init_from), "pairs": str(pairs), "kd": kd}
    # Of `distributed`, only the world size (the global batch) and the seed change the weights, as they did when
    # they were its only fields: how the processes are spread over nodes, restarts and NCCL settings do not.
    payload["training"]["distributed"] = {"world_size": cfg.training.processes(), "seed": cfg.training.distributed.seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# The fast-path settings at their defaults key as the values they replaced (what `auto` resolves to on the CPU),
# and unset new switches are left out: runs made before they existed keep their keys, so they still resume, and
# a finished teacher is still reused. Like training.device, `auto` is how, not what: a run may resume elsewhere.
_BEFORE = {"precision": ("auto", "fp32"), "tf32": ("auto", False)}
_NEW_SWITCHES = {"compile": False, "packing": False, "dataloader_workers": None}


def _as_before_fast_path(dump: dict) -> dict:
    training = dict(dump["training"])
    for key, (auto, before) in _BEFORE.items():
        if training.get(key) == auto:
            training[key] = before
    if training.get("tf32") in ("true", "false"):
        training["tf32"] = training["tf32"] == "true"  # the setting was a boolean
    if training["optimizer"]["name"] == "auto":
        training["optimizer"] = {**training["optimizer"], "name": "adamw_torch"}
    for key, default in _NEW_SWITCHES.items():
        if training.get(key) == default:
            training.pop(key, None)
    return {**dump, "training": training}


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RECORD
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def update_record(run_dir: Path, **fields: Any) -> dict[str, Any]:
    record = read_record(run_dir) or {}
    record.update(fields, updated_at=datetime.now(timezone.utc).isoformat())
    atomic_write_json(Path(run_dir) / RECORD, record)
    return record


def find_run(runs_dir: Path, key: str, status: str) -> str | None:
    """The newest run with this key and status (`running` = started but never completed)."""
    if not Path(runs_dir).is_dir():
        return None
    for run_dir in sorted(Path(runs_dir).iterdir(), reverse=True):
        record = read_record(run_dir) if run_dir.is_dir() else None
        if record and record.get("key") == key and record.get("status") == status:
            return run_dir.name
    return None


def find_unfinished_run(runs_dir: Path, key: str) -> str | None:
    return find_run(runs_dir, key, "running")
