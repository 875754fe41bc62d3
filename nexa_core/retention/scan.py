"""Finding candidates on disk: sizes, newest mtimes, checkpoints, packages, releases, crash leftovers."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import RUN_ID_RE
from nexa_core.release.deploy import LOCK_NAME, TMP_LINK_RE, releases_dir
from nexa_core.release.packaging import TMP_SUFFIX, UNPACK_SUFFIX

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
LEFTOVER_PREFIX = ".deleting-"
PACKAGE_SUFFIX = ".tar.gz"
# The temp names packaging and deploy write (tempfile's random part is 8 characters).
TMP_PACKAGE_RE = re.compile(rf"\.(?P<run_id>.+){re.escape(PACKAGE_SUFFIX)}\.[a-z0-9_]{{8}}{re.escape(TMP_SUFFIX)}")
UNPACK_RE = re.compile(rf"\.(?P<run_id>.+)\.[a-z0-9_]{{8}}{re.escape(UNPACK_SUFFIX)}")


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
    parents = [layout.scratch / "runs", layout.runs_dir, layout.packages_dir, releases_dir(layout), layout.deploy_dir]
    parents += [run / "checkpoints" for _, run in scratch_runs(layout)]
    found = []
    for parent in parents:
        try:
            found += [p for p in parent.iterdir() if p.name.startswith(LEFTOVER_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found)


@dataclass
class CrashLeftover:
    """A temp file or folder a killed `nexa package` or `nexa deploy` left; `hold` is the flock its writer holds
    while it is in use (the item itself, or deploy's lock)."""

    path: Path
    run_id: str
    what: str
    hold: Path


def crash_leftovers(layout: Layout) -> list[CrashLeftover]:
    """Temp packages in packages/, unpack folders in deploy/releases/, new current_model links in deploy/."""
    found = []
    for parent, pattern, what in ((layout.packages_dir, TMP_PACKAGE_RE, "temporary package of an interrupted `nexa package`"),
                                  (releases_dir(layout), UNPACK_RE, "unpack folder of an interrupted deploy"),
                                  (layout.deploy_dir, TMP_LINK_RE, "new current_model link of an interrupted deploy")):
        try:
            children = sorted(parent.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for p in children:
            match = pattern.fullmatch(p.name)
            if not match:
                continue
            run_id = match.groupdict().get("run_id") or ""
            if pattern is TMP_LINK_RE:
                found.append(CrashLeftover(p, run_id, what, layout.deploy_dir / LOCK_NAME))
            elif RUN_ID_RE.fullmatch(run_id):
                found.append(CrashLeftover(p, run_id, what, p))
    return found


def durable_runs(layout: Layout) -> list[tuple[str, Path]]:
    """Run folders under <durable>/runs/ (records, final/ models)."""
    return [(p.name, p) for p in _real_dirs(layout.runs_dir) if RUN_ID_RE.fullmatch(p.name)]


def read_json(path: Path) -> tuple[Any, bool]:
    """(document, ok): (None, True) when the file is missing, (None, False) when it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), True
    except FileNotFoundError:
        return None, True
    except (OSError, ValueError):
        return None, False
