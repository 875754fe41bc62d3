"""Content hashes of files (weights, packages, stored objects): sha256 streamed by `hashlib.file_digest`."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file; `hashlib.file_digest` reads it in chunks, so large weights never sit in memory."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_stream(fh) -> str:
    """Hex sha256 of an open binary stream (e.g. a tar member), read to its end."""
    return hashlib.file_digest(fh, "sha256").hexdigest()
