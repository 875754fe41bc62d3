"""Atomic writes: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def temp_beside(target: Path, suffix: str) -> tuple[int, str]:
    """A new temp file in `target`'s folder (created if missing), so os.replace onto `target` is a rename on one
    filesystem. A store that prunes empty folders after a delete (LocalStore) may remove a folder just created
    here by this or another thread before the temp file lands in it: then create it again."""
    for attempt in range(10):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # may itself lose a parent it just made
            return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
        except (FileNotFoundError, FileExistsError):  # FileExistsError: mkdir saw the folder, then it was gone
            if attempt == 9:
                raise
    raise AssertionError("unreachable")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    target = Path(path)
    fd, tmp = temp_beside(target, ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
