"""Completion records: the JSON a store writes LAST for a synced folder or file, and the checks a reader
applies before trusting one (see store.py for the formats)."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nexa_core.common.errors import NexaError
from nexa_core.storage.uri import _key_problem

COMPLETE_NAME = "_NEXA_COMPLETE.json"
FILE_RECORD_SUFFIX = ".complete.json"
RECORD_FORMAT = "nexa-complete/1"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _scan_folder(local_dir: Path) -> dict[str, Path]:
    """relpath (posix) -> file for every file under `local_dir`; symlinks to files count as those files."""
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(local_dir):
        dirnames.sort()
        linked_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames) + linked_dirs:
            path = Path(dirpath) / name
            rel = path.relative_to(local_dir).as_posix()
            if not path.is_file() or name in linked_dirs:
                raise NexaError(f"{path} is not a regular file; remove it from {local_dir} and sync again")
            problem = _key_problem(rel)
            if problem:
                raise NexaError(f"file name {rel!r} in {local_dir} cannot be synced ({problem}); rename it")
            if rel == COMPLETE_NAME:
                raise NexaError(f"{path} uses the reserved name {COMPLETE_NAME}; rename or remove it and sync again")
            files[rel] = path
    return files


def _check_record(record: Any, where: str, kind: str) -> dict:
    def bad(why: str) -> NexaError:
        return NexaError(f"completion record {where} is malformed ({why}); re-run the sync from the source")

    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise bad(f"not a {RECORD_FORMAT} record")
    if record.get("kind") != kind:
        raise bad(f"kind {record.get('kind')!r}, expected {kind!r}")
    entries = record.get("files") if kind == "folder" else {"": record}
    if not isinstance(entries, dict):
        raise bad("'files' is not a mapping")
    for rel, meta in entries.items():
        if kind == "folder" and (not isinstance(rel, str) or _key_problem(rel) or rel == COMPLETE_NAME):
            raise bad(f"unsafe file name {rel!r}")
        if not isinstance(meta, dict) or not isinstance(meta.get("size"), int) or meta["size"] < 0 \
                or not isinstance(meta.get("sha256"), str) or not _SHA_RE.fullmatch(meta["sha256"]):
            raise bad(f"bad size/sha256 for {rel or record.get('key')!r}")
    if kind == "folder":
        folders = {rel.rsplit("/", i)[0] for rel in entries for i in range(1, rel.count("/") + 1)}
        clash = folders & set(entries)
        if clash:
            raise bad(f"{sorted(clash)[0]!r} is listed both as a file and as a folder")
    return record
