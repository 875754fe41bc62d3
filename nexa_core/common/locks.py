"""A lock file held by one live process: `flock`, so a holder that dies (even by SIGKILL) releases it.

The file names its holder (pid and host) for the messages of whoever waits, and is removed on release, so a
lock leaves nothing behind. Removing a lock file is only safe with the inode check in `acquire`: a process
that opened the file before it was removed must not hold a lock on the removed copy.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FileLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, block: bool = True) -> bool:
        """Take the lock (waiting for it with `block`); False if another live process holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file we had opened; lock the one at the path now
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still holding it: see the module docstring
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder(path: Path) -> str | None:
    """Who holds the lock at `path` ("pid 12 on host-a"), or None when no live process does."""
    held, raw = _probe(path, read=True)
    return _describe(raw) if held else None


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw)
        return f"pid {info['pid']} on {info['host']}"
    except (ValueError, KeyError, TypeError):
        return "another process"  # caught between its create and its write


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def in_use(path: Path) -> bool:
    """Whether a live process holds a flock on `path` (a file or a folder); False once it is gone or unlocked.

    For writers that flock what they are writing (a temp package, an unpack folder) rather than a lock file."""
    return _probe(path)[0]


def _probe(path: Path, read: bool = False) -> tuple[bool, bytes]:
    """(held by a live process, the holder's note if `read`): a shared flock for an instant, dropped on close."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return False, b""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, os.pread(fd, 4096, 0) if read else b""
        return False, b""  # we could lock it, so its last holder is gone
    finally:
        os.close(fd)


@contextmanager
def exclusive_if_free(path: Path) -> Iterator[bool]:
    """Hold an exclusive flock on `path` (file or folder) for the block and yield True, or yield False when a live
    process holds it. A missing `path` yields True: nobody can hold what is not there. Nothing is written, so an
    mtime check made before still holds."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
