"""Data drops: new raw files (CSV, TSV, JSONL, Parquet) that arrive in a watched folder or under an S3 prefix.

A drop is one file directly in the watched location; its file name is its name (the `raw_dataset` partition
key). Files whose name starts with `.` or `_` are in-progress uploads or tool droppings and are ignored: write a
drop as `.name.tmp` and rename it into place, so a half-written file is never picked up. Drops are immutable: a
file changed under a name already seen is reported, never reprocessed (use a new file name for new data).

    source = DropSource("/shared/data/raw")            # or DropSource("s3://bucket/raw", storage=StorageSettings(...))
    for drop in source.list(): print(drop.name, drop.fingerprint, problem(drop))
    path = source.fetch("2026-11-22.csv", tmp_dir)     # a local file to read (S3: downloaded into tmp_dir)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from nexa_core.common.errors import NexaError
from nexa_core.data.loading import SUPPORTED, detect_format
from nexa_core.storage.settings import StorageSettings

# Partition keys and file names: no path separators, no leading dot, nothing a shell or URL must escape.
DROP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class Drop:
    name: str  # the file name: the partition key
    size: int
    fingerprint: str  # changes when the file changes (size + mtime locally; the ETag on S3)


def ignored(name: str) -> bool:
    """Names that are never drops (in-progress uploads `.x.tmp`, `_SUCCESS`, `.DS_Store`)."""
    return name.startswith((".", "_"))


def problem(drop: Drop) -> Optional[str]:
    """Why a file cannot be a drop (one line with the fix), or None. Content is validated when it is read."""
    if not DROP_NAME_RE.fullmatch(drop.name) or ".." in drop.name:
        return ("name has characters other than letters, digits, '.', '_' and '-' (or is too long); "
                "rename it, e.g. reviews-2026-11-22.csv")
    if detect_format(drop.name) is None:
        return f"unsupported format; use {SUPPORTED}"
    if drop.size == 0:
        return "empty file; write the data, then rename it into place"
    return None


def validate_drop_name(name: str) -> str:
    if not isinstance(name, str) or not DROP_NAME_RE.fullmatch(name) or ".." in name:
        raise NexaError(f"drop {name!r}: not a valid drop name; use letters, digits, '.', '_' and '-' "
                        "(the file name of a file in the raw-data folder)")
    return name


class DropSource:
    """The watched location: a local folder or `s3://bucket/prefix`, reached with the S3 client that `storage`
    makes (endpoint, region, credentials; None: the settings from the environment)."""

    def __init__(self, location: str | os.PathLike, *, storage: Optional[StorageSettings] = None):
        self.location = os.fspath(location)
        self.is_s3 = self.location.startswith("s3://")
        self._store = None
        if self.is_s3:
            from nexa_core.storage.s3 import S3Store

            self._store = S3Store.from_uri(self.location, field="data.drops.s3_prefix",
                                           settings=storage if storage is not None else StorageSettings.from_env())
        elif "://" in self.location:
            raise NexaError(f"data.drops.folder: {self.location!r} is neither a folder nor an s3:// prefix; "
                            "use e.g. /shared/data/raw or s3://bucket/raw")
        else:
            self.folder = Path(self.location).expanduser()

    def describe(self) -> str:
        return self._store.describe() if self._store else str(self.folder)

    def list(self) -> list[Drop]:
        """Candidate drops, by name (ignored names left out; bad names kept so they can be reported)."""
        drops = self._list_s3() if self._store else self._list_folder()
        return sorted((d for d in drops if not ignored(d.name)), key=lambda d: d.name)

    def _list_folder(self) -> list[Drop]:
        if not self.folder.is_dir():
            return []  # nothing dropped yet
        found = []
        try:
            for entry in os.scandir(self.folder):
                if entry.is_file():
                    stat = entry.stat()
                    found.append(Drop(entry.name, stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}"))
        except OSError as err:
            raise NexaError(f"data.drops.folder: cannot list {self.folder} ({err.strerror}); check that this user "
                            "can read it") from None
        return found

    def _list_s3(self) -> list[Drop]:
        store = self._store
        base = f"{store.prefix}/" if store.prefix else ""
        found = []
        try:
            pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=base,
                                                                          Delimiter="/")
            for page in pages:
                for item in page.get("Contents", []) or []:
                    name = item["Key"][len(base):]
                    if name:  # only objects directly under the prefix: "sub/" folders are not drops
                        found.append(Drop(name, int(item["Size"]), str(item.get("ETag", "")).strip('"')))
        except Exception as err:  # noqa: BLE001 - botocore raises many types; all mean "cannot list"
            raise NexaError(f"data.drops.s3_prefix: cannot list {store.describe()} ({type(err).__name__}: "
                            f"{err}); check the prefix, endpoint and credentials") from None
        return found

    def fetch(self, name: str, tmp_dir: Path) -> Path:
        """A local path to the drop's bytes (S3: downloaded into tmp_dir)."""
        validate_drop_name(name)
        if not self._store:
            path = self.folder / name
            if not path.is_file():
                raise NexaError(f"drop {name!r}: {path} not found; was it moved or deleted?")
            return path
        dest = Path(tmp_dir) / name
        key = f"{self._store.prefix}/{name}" if self._store.prefix else name
        try:
            self._store.client.download_file(self._store.bucket, key, str(dest))
        except Exception as err:  # noqa: BLE001
            raise NexaError(f"drop {name!r}: cannot download {self._store.describe(name)} ({type(err).__name__}: "
                            f"{err}); check that it exists and the credentials can read it") from None
        return dest

    def exists(self, name: str) -> bool:
        return any(d.name == name for d in self.list()) if self._store else (self.folder / name).is_file()
