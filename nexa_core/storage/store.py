"""The durable-store interface and the shared verified-sync logic (push, pull, records, deletes).

A store holds objects under relative keys (`runs/<run_id>/final/model.safetensors`). Two forms of
synced data, each made whole by a completion record written LAST:

  folder  `push(local_dir, key)` mirrors a folder (recursively) to `<key>/...` and then writes
          `<key>/_NEXA_COMPLETE.json`: {"format", "kind": "folder", "key", "files": {relpath: {size,
          sha256}}, "file_count", "total_bytes", "created_at", "source", "host"}.
  file    `push_file(path, key)` stores one file (package tarball, manifest) at `<key>` and then writes
          the sidecar `<key>.complete.json`: {"format", "kind": "file", "key", "size", "sha256", ...}.

A reader never takes data without its record: `pull` / `pull_file` refuse ("incomplete upload ...;
re-run the sync"), download into a temporary sibling of the target, check every file's size and sha256
against the record, and only then rename into place, so a failed or corrupt pull leaves nothing behind.

Push is resumable: a file whose stored object already has the same size and content digest (as the store
reports it: S3's own CRC32 checksum, or the stored bytes for `LocalStore`) is skipped, so an interrupted push
re-uploads only what is missing or different. Each upload is verified (stored size and digest) before
the record is written, and uploaded again if it does not verify (`retries` attempts in all); a download that
does not match its record is fetched again the same way before it is refused. A previous record for the key
is removed before the first object changes, so a half-updated key never looks complete. Objects under
`<key>/` that the local folder no longer has are deleted (the key mirrors the folder), so keys must not nest
inside one another.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file
from nexa_core.storage.records import COMPLETE_NAME, FILE_RECORD_SUFFIX, RECORD_FORMAT, _check_record, _now, _scan_folder
from nexa_core.storage.retry import ObjectMissing, Retrying, _Aborted, _Mismatch
from nexa_core.storage.uri import validate_key

log = logging.getLogger("nexa_core.storage")

_TMP_SUFFIX = ".nexa-tmp"


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object as the store reports it: its size, the sha256 (hex) recorded with it (None: unknown) and,
    on S3, the checksum the server computed itself (`ChecksumCRC32`, base64; None: the object has none)."""

    size: int
    sha256: str | None
    checksum: str | None = None
    key: str | None = None  # the store key it was read from (S3: to recognise an upload we just made)


class DurableStore(Retrying, ABC):
    """Verified, resumable sync of folders and files to a store; subclasses supply the object primitives.

    Primitives take keys relative to the store root and may raise store-specific exceptions (the S3 client
    has already retried transient ones); `_translate` turns them into one-line NexaErrors where it knows
    better words, and `_matches` says whether a stored object holds a local file's bytes.
    """

    # ------------------------------------------------------------------------------------ primitives

    @abstractmethod
    def describe(self, key: str = "") -> str:
        """Where `key` is, for messages: `s3://bucket/prefix/key` or a local path."""

    @abstractmethod
    def _put_file(self, path: Path, key: str, sha256: str) -> None:
        """Store the file at `key`, recording `sha256` with it."""

    @abstractmethod
    def _head(self, key: str) -> ObjectInfo | None:
        """Size and recorded sha256 of the object, or None if there is none."""

    @abstractmethod
    def _get_file(self, key: str, dest: Path) -> None:
        """Write the object's bytes to `dest`; ObjectMissing if there is none."""

    @abstractmethod
    def _put_bytes(self, key: str, data: bytes) -> None:
        """Store a small object (completion records)."""

    @abstractmethod
    def _get_bytes(self, key: str) -> bytes | None:
        """A small object's bytes, or None if there is none."""

    @abstractmethod
    def _list(self, prefix: str) -> dict[str, int]:
        """key -> size for `prefix` itself and every key under `prefix/` ("" = everything)."""

    @abstractmethod
    def _delete(self, keys: list[str]) -> None:
        """Delete these objects, in the given order; missing ones are fine."""

    def _matches(self, info: ObjectInfo | None, path: Path, size: int, sha256: str) -> bool:
        """Whether the stored object (as `_head` reports it) holds exactly the bytes of `path`."""
        return info is not None and info.size == size and info.sha256 == sha256

    # ------------------------------------------------------------------------------------ helpers

    def _load_record(self, record_key: str, key: str, kind: str) -> dict | None:
        raw = self._retrying("reading", record_key, lambda: self._get_bytes(record_key))
        if raw is None:
            return None
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NexaError(f"completion record {self.describe(record_key)} is not valid JSON ({exc}); "
                            "re-run the sync from the source") from exc
        return _check_record(record, self.describe(record_key), kind)

    def _write_record(self, record_key: str, record: dict) -> None:
        data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")
        self._retrying("writing completion record", record_key, lambda: self._put_bytes(record_key, data))

    def _upload_verified(self, path: Path, key: str, size: int, sha: str, stat: os.stat_result,
                         abort: threading.Event) -> None:
        def once() -> None:
            self._put_file(path, key, sha)
            info = self._head(key)
            if not self._matches(info, path, size, sha):
                got = "no object" if info is None else \
                    f"size {info.size}, sha256 {info.sha256}, checksum {info.checksum}"
                raise _Mismatch(f"upload of {self.describe(key)} was not confirmed by the store ({got}; expected "
                                f"size {size}, sha256 {sha}); check the connection and re-run the sync "
                                "(verified files are skipped)")

        self._verified("upload of", key, once, abort)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            raise NexaError(f"{path} changed while it was uploaded to {self.describe(key)}; "
                            "wait until it is completely written and re-run the sync")

    def _file_sha256(self, path: Path) -> str:  # S3Store also takes S3's composite checksum in this one read
        return sha256_file(path)

    def _hash_stable(self, path: Path) -> tuple[int, str, os.stat_result]:
        before = path.stat()
        sha = self._file_sha256(path)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise NexaError(f"{path} changed while it was hashed; wait until it is completely written and re-run the sync")
        return after.st_size, sha, after

    # ------------------------------------------------------------------------------------ push

    def push(self, local_dir: str | os.PathLike, key: str) -> dict:
        """Mirror `local_dir` to `<key>/`, verified; return the completion record plus `uri`, `stats`
        ({uploaded, skipped, deleted, bytes_uploaded, seconds}) and the `uploaded`/`skipped`/`deleted` relpaths."""
        started = time.perf_counter()
        key = validate_key(key)
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise NexaError(f"cannot push {local_dir}: not a folder; pass the folder to sync")
        files = _scan_folder(local_dir)
        record_key = f"{key}/{COMPLETE_NAME}"
        existing = self._retrying("listing", key, lambda: self._list(key))
        existing.pop(key, None)  # an object at the key itself is not part of the folder
        had_record = existing.pop(record_key, None) is not None
        lock = threading.Lock()
        record_gone = [not had_record]

        def drop_old_record() -> None:
            # The old record describes the old objects: remove it before the first one changes.
            with lock:
                if not record_gone[0]:
                    self._retrying("deleting completion record", record_key, lambda: self._delete([record_key]))
                    record_gone[0] = True

        def job(rel: str, path: Path) -> Callable[[threading.Event], tuple[str, dict, bool]]:
            def run(abort: threading.Event) -> tuple[str, dict, bool]:
                if abort.is_set():
                    raise _Aborted()
                size, sha, stat = self._hash_stable(path)
                obj = f"{key}/{rel}"
                if existing.get(obj) == size:
                    info = self._retrying("checking", obj, lambda: self._head(obj), abort)
                    if self._matches(info, path, size, sha):
                        return rel, {"size": size, "sha256": sha}, False
                drop_old_record()
                self._upload_verified(path, obj, size, sha, stat, abort)
                return rel, {"size": size, "sha256": sha}, True
            return run

        results = self._run_parallel([job(rel, path) for rel, path in files.items()])
        stale = sorted(k for k in existing if k[len(key) + 1:] not in files)
        if stale:
            drop_old_record()
            self._retrying("deleting stale objects under", key, lambda: self._delete(stale))
        entries = {rel: meta for rel, meta, _ in results}
        record = {
            "format": RECORD_FORMAT, "kind": "folder", "key": key, "files": dict(sorted(entries.items())),
            "file_count": len(entries), "total_bytes": sum(m["size"] for m in entries.values()),
            "created_at": _now(), "source": str(local_dir.resolve()), "host": socket.gethostname(),
        }
        self._write_record(record_key, record)  # LAST: only now is the folder whole
        uploaded = sorted(rel for rel, _, up in results if up)
        skipped = sorted(rel for rel, _, up in results if not up)
        deleted = [k[len(key) + 1:] for k in stale]
        stats = {"uploaded": len(uploaded), "skipped": len(skipped), "deleted": len(deleted),
                 "bytes_uploaded": sum(entries[r]["size"] for r in uploaded),
                 "seconds": round(time.perf_counter() - started, 3)}
        log.info("pushed %s to %s: %d uploaded, %d skipped, %d deleted", local_dir, self.describe(key),
                 stats["uploaded"], stats["skipped"], stats["deleted"])
        return {**record, "uri": self.describe(key), "stats": stats,
                "uploaded": uploaded, "skipped": skipped, "deleted": deleted}

    def push_file(self, path: str | os.PathLike, key: str) -> dict:
        """Store one file at `key` (verified), then its record `<key>.complete.json`; same return shape as push."""
        started = time.perf_counter()
        key = validate_key(key)
        path = Path(path)
        if not path.is_file():
            raise NexaError(f"cannot push {path}: not a regular file; pass the file to sync")
        record_key = key + FILE_RECORD_SUFFIX
        size, sha, stat = self._hash_stable(path)
        info = self._retrying("checking", key, lambda: self._head(key))
        upload = not self._matches(info, path, size, sha)
        if upload:
            self._retrying("deleting completion record", record_key, lambda: self._delete([record_key]))
            self._upload_verified(path, key, size, sha, stat, threading.Event())
        record = {"format": RECORD_FORMAT, "kind": "file", "key": key, "size": size, "sha256": sha,
                  "created_at": _now(), "source": str(path.resolve()), "host": socket.gethostname()}
        self._write_record(record_key, record)
        name = path.name
        stats = {"uploaded": int(upload), "skipped": int(not upload), "deleted": 0,
                 "bytes_uploaded": size if upload else 0, "seconds": round(time.perf_counter() - started, 3)}
        return {**record, "uri": self.describe(key), "stats": stats,
                "uploaded": [name] if upload else [], "skipped": [] if upload else [name], "deleted": []}

    # ------------------------------------------------------------------------------------ pull

    def _incomplete(self, key: str, record_key: str) -> NexaError:
        return NexaError(f"incomplete upload at {self.describe(key)} (no completion record "
                         f"{self.describe(record_key)}); re-run the sync from the source")

    def _fetch_verified(self, key: str, dest: Path, size: int, sha: str, abort: threading.Event) -> None:
        def once() -> None:
            self._get_file(key, dest)
            got_size = dest.stat().st_size
            got_sha = sha256_file(dest) if got_size == size else None
            if got_size != size or got_sha != sha:
                got = f"size {got_size}" if got_size != size else f"sha256 {got_sha}"
                raise _Mismatch(f"object {self.describe(key)} does not match its completion record ({got}, expected "
                                f"size {size} sha256 {sha}); the stored copy is corrupt or was replaced: "
                                "re-run the sync from the source")

        try:
            self._verified("download of", key, once, abort)
        except ObjectMissing:
            raise NexaError(f"object {self.describe(key)} listed in its completion record is missing; "
                            "the stored copy is damaged: re-run the sync from the source") from None

    @staticmethod
    def _check_target(target: Path, overwrite: bool) -> None:
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise NexaError(f"cannot pull into {target}: it exists and is not a folder; remove it first")
        if target.is_dir() and any(target.iterdir()) and not overwrite:
            raise NexaError(f"cannot pull into {target}: the folder exists and is not empty; "
                            "remove it or pass overwrite=True")

    def pull(self, key: str, local_dir: str | os.PathLike, *, overwrite: bool = False) -> dict:
        """Download `<key>/` into `local_dir`, every file verified against the completion record.

        Refuses a key without a record. Files land in a temporary sibling folder that is renamed into
        place only when all of them verify; on any failure it is removed and `local_dir` is untouched.
        A non-empty existing `local_dir` is replaced only with overwrite=True. Returns the record plus
        `path` and `stats` ({downloaded, bytes, seconds}).
        """
        started = time.perf_counter()
        key = validate_key(key)
        target = Path(local_dir)
        record_key = f"{key}/{COMPLETE_NAME}"
        record = self._load_record(record_key, key, "folder")
        if record is None:
            if self._retrying("reading", key + FILE_RECORD_SUFFIX,
                              lambda: self._get_bytes(key + FILE_RECORD_SUFFIX)) is not None:
                raise NexaError(f"{self.describe(key)} holds a single file, not a folder; use pull_file")
            raise self._incomplete(key, record_key)
        self._check_target(target, overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.pull-"))
        try:
            def job(rel: str, meta: dict) -> Callable[[threading.Event], None]:
                def run(abort: threading.Event) -> None:
                    dest = tmp / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    self._fetch_verified(f"{key}/{rel}", dest, meta["size"], meta["sha256"], abort)
                return run

            self._run_parallel([job(rel, meta) for rel, meta in record["files"].items()])
            os.chmod(tmp, 0o755 & ~_UMASK)
            if target.exists() or target.is_symlink():
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
                os.replace(target, old / "x")
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        stats = {"downloaded": record["file_count"], "bytes": record["total_bytes"],
                 "seconds": round(time.perf_counter() - started, 3)}
        return {**record, "uri": self.describe(key), "path": str(target), "stats": stats}

    def pull_file(self, key: str, dest: str | os.PathLike, *, overwrite: bool = False) -> dict:
        """Download the single file at `key` (pushed with push_file) to `dest`, verified; atomic rename."""
        started = time.perf_counter()
        key = validate_key(key)
        dest = Path(dest)
        record_key = key + FILE_RECORD_SUFFIX
        record = self._load_record(record_key, key, "file")
        if record is None:
            raise self._incomplete(key, record_key)
        if dest.exists() and (dest.is_dir() or not overwrite):
            raise NexaError(f"cannot pull into {dest}: it exists; remove it or pass overwrite=True")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=_TMP_SUFFIX)
        os.close(fd)
        tmp = Path(name)
        try:
            self._fetch_verified(key, tmp, record["size"], record["sha256"], threading.Event())
            os.chmod(tmp, 0o644 & ~_UMASK)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        stats = {"downloaded": 1, "bytes": record["size"], "seconds": round(time.perf_counter() - started, 3)}
        return {**record, "uri": self.describe(key), "path": str(dest), "stats": stats}

    # ------------------------------------------------------------------------------------ inspect, delete

    def read_record(self, key: str) -> dict | None:
        """The completion record of a folder or file key, or None if the key is not complete."""
        key = validate_key(key)
        record = self._load_record(f"{key}/{COMPLETE_NAME}", key, "folder")
        return record if record is not None else self._load_record(key + FILE_RECORD_SUFFIX, key, "file")

    def is_complete(self, key: str) -> bool:
        """True if a folder (`<key>/_NEXA_COMPLETE.json`) or file (`<key>.complete.json`) record exists."""
        key = validate_key(key)
        for record_key in (f"{key}/{COMPLETE_NAME}", key + FILE_RECORD_SUFFIX):
            if self._retrying("checking", record_key, lambda k=record_key: self._head(k)) is not None:
                return True
        return False

    def list_keys(self, prefix: str = "") -> list[str]:
        """Sorted object keys equal to `prefix` or under `prefix/` ("" = all), records included."""
        prefix = validate_key(prefix, "prefix", allow_empty=True)
        return sorted(self._retrying("listing", prefix, lambda: self._list(prefix)))

    def complete_keys(self, prefix: str = "") -> list[str]:
        """Sorted folder and file keys under `prefix` that have a completion record."""
        found = []
        for k in self.list_keys(prefix):
            if k == COMPLETE_NAME or k.endswith("/" + COMPLETE_NAME):
                found.append(k[: -len(COMPLETE_NAME) - 1])
            elif k.endswith(FILE_RECORD_SUFFIX):
                found.append(k[: -len(FILE_RECORD_SUFFIX)])
        return sorted(k for k in found if k)

    def delete_prefix(self, prefix: str) -> int:
        """Delete `prefix`, everything under `prefix/` and `prefix.complete.json`; completion records go
        FIRST so a partial delete never looks complete. Returns the number of objects deleted."""
        prefix = validate_key(prefix, "prefix")
        keys = set(self._retrying("listing", prefix, lambda: self._list(prefix)))
        if self._retrying("checking", prefix + FILE_RECORD_SUFFIX,
                          lambda: self._head(prefix + FILE_RECORD_SUFFIX)) is not None:
            keys.add(prefix + FILE_RECORD_SUFFIX)
        records = sorted(k for k in keys if k.endswith("/" + COMPLETE_NAME) or k.endswith(FILE_RECORD_SUFFIX))
        rest = sorted(keys - set(records))
        if records:
            self._retrying("deleting completion records under", prefix, lambda: self._delete(records))
        if rest:
            self._retrying("deleting", prefix, lambda: self._delete(rest))
        return len(keys)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide, so never toggle it while threads write files
