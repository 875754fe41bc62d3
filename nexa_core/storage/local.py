"""`LocalStore`: the embedded default durable store, a local folder with the same verified semantics as S3."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nexa_core.common.atomic import atomic_write_bytes, temp_beside
from nexa_core.common.hashing import sha256_file
from nexa_core.storage.retry import ObjectMissing
from nexa_core.storage.store import _TMP_SUFFIX, _UMASK, DurableStore, ObjectInfo


class LocalStore(DurableStore):
    """A durable store in a local folder (the embedded default; also a mounted shared filesystem).

    Object `a/b` is the file `<root>/a/b`, written to a temporary sibling, fsynced and renamed, so a
    crash never leaves a partial object under its real name. The sha256 "recorded by the store" is that
    of the stored bytes (hashed on demand).
    """

    def __init__(self, root: str | os.PathLike, *, max_files: int = 4, retries: int = 3):
        self.root = Path(root).expanduser().resolve()
        self.max_files = max_files
        self.retries = retries

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def describe(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def _put_file(self, path: Path, key: str, sha256: str) -> None:
        target = self._path(key)
        fd, tmp = temp_beside(target, _TMP_SUFFIX)  # survives a concurrent _delete pruning the new folder
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644 & ~_UMASK)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return ObjectInfo(path.stat().st_size, sha256_file(path))

    def _get_file(self, key: str, dest: Path) -> None:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(key)
        shutil.copyfile(path, dest)

    def _put_bytes(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self._path(key), data)

    def _get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def _list(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix)
        if base.is_file():
            return {prefix: base.stat().st_size}
        found: dict[str, int] = {}
        if not base.is_dir():
            return found
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                if name.startswith(".") and name.endswith(_TMP_SUFFIX):
                    continue  # an interrupted write: never an object
                path = Path(dirpath) / name
                try:
                    found[path.relative_to(self.root).as_posix()] = path.stat().st_size
                except FileNotFoundError:
                    continue
        return found

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != self.root and parent.is_relative_to(self.root):
                try:
                    parent.rmdir()  # only empty folders go
                except OSError:
                    break
                parent = parent.parent
