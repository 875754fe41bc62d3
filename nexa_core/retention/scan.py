"""Finding candidates on disk: sizes, newest mtimes, checkpoints, packages, releases, crash leftovers."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import RUN_ID_RE
from nexa_core.release.deploy import releases_dir

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
LEFTOVER_PREFIX = ".deleting-"
PACKAGE_SUFFIX = ".tar.gz"


def tree_stats(path: Path) -> tuple[int, float]:
    """(total file bytes, newest mtime) of `path` and everything under it; symlinks are not followed."""
    st = os.lstat(path)
    size, newest = (0 if stat.S_ISDIR(st.st_mode) else st.st_size), st.st_mtime
    stack = [path] if stat.S_ISDIR(st.st_mode) else []
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except (FileNotFoundError, NotADirectoryError):
            continue  # vanished while we looked
        with entries:
            for entry in entries:
                try:
                    est = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                newest = max(newest, est.st_mtime)
                if stat.S_ISDIR(est.st_mode):
                    stack.append(Path(entry.path))
                else:
                    size += est.st_size
    return size, newest


def _real_dirs(parent: Path) -> Iterator[Path]:
    """Sub-folders of `parent` that are folders themselves, not symlinks to one."""
    try:
        children = sorted(parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for child in children:
        if child.is_dir() and not child.is_symlink():
            yield child


def scratch_runs(layout: Layout) -> list[tuple[str, Path]]:
    return [(p.name, p) for p in _real_dirs(layout.scratch / "runs") if RUN_ID_RE.fullmatch(p.name)]


def checkpoints(run_scratch: Path) -> list[tuple[int, Path]]:
    """`checkpoint-<step>` folders, oldest step first. HF's in-progress `tmp-checkpoint-*` is never listed."""
    found = []
    for p in _real_dirs(run_scratch / "checkpoints"):
        match = CHECKPOINT_RE.fullmatch(p.name)
        if match:
            found.append((int(match.group(1)), p))
    return sorted(found)


def packages(layout: Layout) -> list[tuple[str, Path]]:
    found = []
    try:
        children = sorted(layout.packages_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    for p in children:
        run_id = p.name[: -len(PACKAGE_SUFFIX)] if p.name.endswith(PACKAGE_SUFFIX) else ""
        if RUN_ID_RE.fullmatch(run_id) and p.is_file() and not p.is_symlink():
            found.append((run_id, p))
    return found


def releases(layout: Layout) -> list[tuple[str, Path]]:
    return [(p.name, p) for p in _real_dirs(releases_dir(layout)) if RUN_ID_RE.fullmatch(p.name)]


def leftovers(layout: Layout) -> list[Path]:
    """`.deleting-*` entries left by an apply that crashed between its rename and its rmtree."""
    parents = [layout.scratch / "runs", layout.packages_dir, releases_dir(layout)]
    parents += [run / "checkpoints" for _, run in scratch_runs(layout)]
    found = []
    for parent in parents:
        try:
            found += [p for p in parent.iterdir() if p.name.startswith(LEFTOVER_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found)


def read_json(path: Path) -> tuple[Any, bool]:
    """(document, ok): (None, True) when the file is missing, (None, False) when it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), True
    except FileNotFoundError:
        return None, True
    except (OSError, ValueError):
        return None, False
