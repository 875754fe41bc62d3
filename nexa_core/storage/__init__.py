"""Durable storage with verified sync: a local folder (`LocalStore`, the embedded default) or S3 (`S3Store`).

    store = open_durable(StorageSettings.from_env(), layout)  # THE factory: S3 under NEXA_S3_PREFIX, else local mirror
    store = open_store("s3://my-bucket/nexa")           # or open_store("/mnt/durable"): an explicit location
    store.push(run_dir, "runs/<run_id>")                # folder -> <key>/..., then <key>/_NEXA_COMPLETE.json
    store.push_file(package, "packages/<run_id>.tar.gz")  # file -> <key>, then <key>.complete.json
    store.pull("runs/<run_id>", target_dir)             # refuses incomplete keys; verifies every sha256
    store.pull_file("packages/<run_id>.tar.gz", target_file)
    store.is_complete(key); store.read_record(key); store.list_keys(prefix); store.complete_keys(prefix)
    store.delete_prefix(prefix)                         # completion records first

See `nexa_core/storage/settings.py` for the settings and the factory (endpoint, region, credentials, botocore's
retries), `nexa_core/storage/store.py` for the sync semantics and `nexa_core/storage/s3.py` for concurrency and
S3's checksums. boto3 is imported only when an S3 store is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexa_core.common.errors import NexaError
from nexa_core.storage.local import LocalStore
from nexa_core.storage.settings import StorageSettings, open_durable, s3_client
from nexa_core.storage.store import COMPLETE_NAME, FILE_RECORD_SUFFIX, DurableStore, ObjectInfo
from nexa_core.storage.uri import parse_s3_uri, validate_key

if TYPE_CHECKING:
    from nexa_core.storage.s3 import S3Store

__all__ = [
    "COMPLETE_NAME", "FILE_RECORD_SUFFIX", "DurableStore", "LocalStore", "ObjectInfo", "S3Store", "StorageSettings",
    "open_durable", "open_store", "parse_s3_uri", "s3_client", "validate_key",
]


def __getattr__(name: str) -> Any:
    if name == "S3Store":  # lazy: importing nexa_core.storage must not need boto3
        from nexa_core.storage.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(location: str | os.PathLike, *, field: str = "NEXA_S3_PREFIX", **kwargs: Any) -> DurableStore:
    """`s3://bucket[/prefix]` -> S3Store (kwargs passed on); a local path -> LocalStore; other schemes -> NexaError."""
    text = os.fspath(location)
    if isinstance(text, str) and "://" in text:
        if not text.startswith("s3://"):
            parse_s3_uri(text, field)  # raises the one-line error naming the scheme
        from nexa_core.storage.s3 import S3Store

        return S3Store.from_uri(text, field=field, **kwargs)
    if not str(text).strip():
        raise NexaError(f"{field} is empty; use e.g. {field}=s3://my-bucket/nexa or a local folder")
    return LocalStore(Path(text), **kwargs)
