"""Promotion of packaged runs to `<deploy_dir>/current_model`, with history and rollback.

Layout under `layout.deploy_dir`:

    releases/<run_id>/      a verified, unpacked package (model/, config.yaml, metrics.json, manifest.json, SHA256SUMS)
    current_model           symlink -> releases/<run_id>/model (relative, so the durable folder can move)
    history.jsonl           one JSON record per promotion: action, run_id, previous_run_id, deployed_at, by (CLI or
                            Dagster, with dagster_run_id), line (trained or student) when known, forced/overrides
    .lock                   flock'ed while history and current_model change

`current_model` is swapped with a rename over it, so a reader always sees the old model or the new one.
Rollback is an undo: it returns to the release that was current before the latest deploy still in effect.

A record is written just before its swap, so a process killed between the two leaves a record of a promotion
that never took effect: `history` leaves such records out (the next record's `previous_run_id`, or for the last
one `current_model`, says what was really in effect) and the next promotion removes a trailing one from the file.

A package is unpacked only if its sha256 is the one packaging recorded in the run's run.json (`package`), and a
release folder is used only if its SHA256SUMS is the recorded one: the package's own checksum list is not enough.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import RUN_ID_RE, validate_run_id
from nexa_core.release.packaging import SUMS_NAME, recorded_package, unpack_package, verify_unpacked
from nexa_core.training.record import RECORD

log = logging.getLogger(__name__)

CURRENT_NAME = "current_model"
RELEASES_NAME = "releases"
HISTORY_NAME = "history.jsonl"
LOCK_NAME = ".lock"
TMP_LINK_RE = re.compile(rf"\.{CURRENT_NAME}\.\d+\.[0-9a-f]{{32}}\.tmp")  # _point_current_at's new link, before its rename


def releases_dir(layout: Layout) -> Path:
    return layout.deploy_dir / RELEASES_NAME


def release_dir(layout: Layout, run_id: str) -> Path:
    return releases_dir(layout) / validate_run_id(run_id)


def current_model_path(layout: Layout) -> Path:
    return layout.deploy_dir / CURRENT_NAME


def history_path(layout: Layout) -> Path:
    return layout.deploy_dir / HISTORY_NAME


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """Exclusive lock on `<deploy_dir>/.lock`: serialises promotions across threads and processes."""
    layout.deploy_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.deploy_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------------- history


def _records(data: bytes, path: Path) -> list[tuple[int, dict]]:
    """(offset of its line, record) for every record in history.jsonl's bytes."""
    records = []
    lines = data.split(b"\n")
    offset = 0
    for lineno, line in enumerate(lines, start=1):
        start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            if lineno == len(lines):
                continue  # a torn final line from an interrupted write: it never took effect
            raise NexaError(f"{path} line {lineno} is not a JSON object; fix or remove that line") from None
        records.append((start, record))
    return records


def _took_effect(records: list[dict], current: str | None) -> list[bool]:
    """Whether each record's promotion took effect: the next promotion found its run in current_model (and the
    last one's run is there now). A record of a promotion killed before its swap fails this."""
    after = [r.get("previous_run_id") for r in records[1:]] + [current]
    return [record.get("run_id") == then for record, then in zip(records, after)]


def history(layout: Layout) -> list[dict]:
    """Every promotion that took effect, oldest first."""
    path = history_path(layout)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = [record for _, record in _records(data, path)]
    return [record for record, ok in zip(records, _took_effect(records, current_release(layout))) if ok]


def _append_history(layout: Layout, record: dict) -> int:
    """Append one record (caller holds the lock); returns the old size so a failed swap can undo it.

    A torn final line, or a final record whose swap never happened (its run is not in current_model, which
    only changes under the lock), is cut off first: the file keeps only promotions that took effect."""
    path = history_path(layout)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        size = len(data)
        if data and not data.endswith(b"\n"):
            size = data.rfind(b"\n") + 1
        records = _records(data[:size], path)
        if records and records[-1][1].get("run_id") != record["previous_run_id"]:
            size = records[-1][0]
        if size != len(data):
            os.ftruncate(fd, size)
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return size


def _truncate_history(layout: Layout, size: int) -> None:
    with open(history_path(layout), "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def _stack(records: list[dict]) -> list[str]:
    """Replay history into the stack of releases that rollback walks back through."""
    stack: list[str] = []
    for record in records:
        run_id = record.get("run_id")
        if record.get("action") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != run_id:
                stack.append(run_id)
        elif not stack or stack[-1] != run_id:
            stack.append(run_id)
    return stack


# ------------------------------------------------------------------------------------------ current


def current_release(layout: Layout) -> str | None:
    """The run id `current_model` points at, or None when nothing is deployed."""
    link = current_model_path(layout)
    if not link.is_symlink():
        if link.exists():
            raise NexaError(f"{link} is not a symlink; move it aside and deploy again with `nexa deploy <run_id>`")
        return None
    target = os.readlink(link)
    parts = PurePosixPath(target).parts
    if len(parts) != 3 or parts[0] != RELEASES_NAME or parts[2] != "model" or not RUN_ID_RE.fullmatch(parts[1]):
        raise NexaError(
            f"{link} points at {target!r}, not at {RELEASES_NAME}/<run_id>/model; deploy again with `nexa deploy <run_id>`"
        )
    return parts[1]


def _point_current_at(layout: Layout, run_id: str) -> Path:
    """Atomically re-point current_model: a new symlink under a unique name, renamed over the old one."""
    link = current_model_path(layout)
    tmp = layout.deploy_dir / f".{CURRENT_NAME}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    os.symlink(f"{RELEASES_NAME}/{run_id}/model", tmp)
    try:
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NexaError(f"cannot update {link} ({exc.strerror}); move it aside and deploy again") from None
    _fsync_dir(layout.deploy_dir)
    return link


def _check_release(layout: Layout, run_id: str) -> Path:
    release = release_dir(layout, run_id)
    if release.is_symlink() or not release.is_dir():
        raise NexaError(f"release {run_id} is not a folder at {release}; remove it and deploy again with `nexa deploy {run_id}`")
    recorded = recorded_package(layout, run_id)
    sums = release / SUMS_NAME
    # A release unpacked before digests were recorded is trusted as verified when it was unpacked.
    if recorded and sums.is_file() and not sums.is_symlink() and sha256_file(sums) != recorded["sums_sha256"]:
        raise NexaError(f"release {release}: its {SUMS_NAME} is not the one recorded when run {run_id} was packaged "
                        f"({layout.run_dir(run_id) / RECORD}); remove {release} and deploy {run_id} again")
    try:
        verify_unpacked(release, f"release {release}")
    except NexaError as exc:
        raise NexaError(f"{exc}; or remove {release} and deploy {run_id} again") from None
    if not (release / "model").is_dir():
        raise NexaError(f"release {release} has no model/ folder; remove it and deploy {run_id} again")
    return release


def _ensure_release(layout: Layout, run_id: str) -> Path:
    """Unpack the run's package into releases/<run_id> (its recorded digest, then its checksums, verified), or
    reuse a release already there."""
    release = release_dir(layout, run_id)
    if release.exists() or release.is_symlink():
        return _check_release(layout, run_id)
    package = layout.package_path(run_id)
    if not package.is_file():
        raise NexaError(f"no package for run {run_id} at {package}; build it first with `nexa package {run_id}`")
    fix = f"re-package it with `nexa package {run_id}`, or restore it with `nexa pull {run_id} --overwrite`"
    recorded = recorded_package(layout, run_id)
    if recorded is None:
        raise NexaError(f"package {package}: no digest recorded for it in {layout.run_dir(run_id) / RECORD} "
                        f"(`package.sha256`), so it cannot be trusted; {fix}")
    try:
        unpack_package(package, release, sha256=recorded["sha256"], fix=fix)
    except NexaError:
        if release.exists():  # a concurrent deploy of the same run unpacked it first
            return _check_release(layout, run_id)
        raise
    if not (release / "model").is_dir():
        raise NexaError(f"package {package} has no model/ folder; rebuild it with `nexa package {run_id}`")
    return release


# ------------------------------------------------------------------------------------------ actions


def _promote(layout: Layout, record: dict) -> None:
    """Under the lock: log the record, then swap; a failed swap takes the record back out."""
    size = _append_history(layout, record)
    try:
        _point_current_at(layout, record["run_id"])
    except BaseException:
        _truncate_history(layout, size)
        raise
    _sync_registry(layout)


def _sync_registry(layout: Layout) -> None:
    """Under the lock, after the swap: MLflow's `champion` alias follows current_model and `previous` names what a
    rollback would serve next. The deploy has happened; a registry that fails is reported, not a failed deploy."""
    from nexa_core.tracking.registry import sync_aliases

    stack = _stack(history(layout))
    if not stack:
        return
    try:
        log.info(sync_aliases(layout.run_dir(stack[-1]), layout.run_dir(stack[-2]) if len(stack) > 1 else None))
    except Exception as err:  # noqa: BLE001 - the model is deployed either way; say what the registry missed
        log.warning("registry: aliases not moved after deploying %s (%s)", stack[-1], err)


def _origin(origin: dict | None) -> dict:
    """Who promoted: {"by": "CLI"} unless the caller says (a Dagster run: by, dagster_run_id; the model line)."""
    return {"by": "CLI", **(origin or {})}


def deploy(layout: Layout, run_id: str, guard: Callable[[str | None], list[str]] | None = None,
           origin: dict | None = None) -> Path:
    """Make `run_id` the current model; returns the `current_model` path.

    `guard(current_run_id)` runs under the lock, before anything changes: it raises to refuse the deploy, or
    returns the reasons it was told to override (recorded in the history record as `overrides`). `origin` is
    added to the record (by, dagster_run_id, line)."""
    run_id = validate_run_id(run_id)
    _ensure_release(layout, run_id)  # the slow part runs outside the lock
    with _locked(layout):
        previous = current_release(layout)
        overrides = guard(previous) if guard else []
        record = {"action": "deploy", "run_id": run_id, "previous_run_id": previous, "deployed_at": _now(),
                  **_origin(origin)}
        if overrides:
            record.update(forced=True, overrides=overrides)
        _promote(layout, record)
    return current_model_path(layout)


def rollback(layout: Layout, origin: dict | None = None) -> str:
    """Re-point current_model at the release deployed before the current one; returns its run id."""
    with _locked(layout):
        current = current_release(layout)
        if current is None:
            raise NexaError(f"nothing to roll back: no model is deployed at {current_model_path(layout)}")
        stack = _stack(history(layout))
        if not stack or stack[-1] != current:
            raise NexaError(
                f"{history_path(layout)} does not end with the deployed run {current}; "
                f"deploy it again with `nexa deploy {current}` to resynchronise, then roll back"
            )
        stack.pop()
        if not stack:
            raise NexaError(f"nothing to roll back to: {current} is the earliest deployment in {history_path(layout)}")
        target = validate_run_id(stack[-1])
        _check_release(layout, target)
        _promote(layout, {"action": "rollback", "run_id": target, "previous_run_id": current, "deployed_at": _now(),
                          **_origin(origin)})
    return target
