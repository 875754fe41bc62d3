"""Claiming a run: exactly one process trains a run at a time, and a run is resumed only when interrupted.

A claim holds `runs/<id>/run.lock` (common/locks.py) from the choice of the run id until training ends; a
holder that dies releases it, which is what makes its run "interrupted" and resumable. Inside the claim an
exception marks the run `failed` with its reason (never resumed: the next run of the same work starts anew),
while a kill or Ctrl-C leaves it `running`: interrupted. A run refused before it wrote anything is removed.

Statuses in run.json: `claimed` (id taken, training not begun), `running`, `complete`, `failed`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import FileLock, holder
from nexa_core.common.run_ids import RUN_ID_RE, new_run_id, validate_run_id
from nexa_core.config import NexaConfig
from nexa_core.training.record import read_record, update_record, work_key

log = logging.getLogger(__name__)
LOCK = "run.lock"
UNFINISHED = ("claimed", "running")


@dataclass
class RunClaim:
    run_id: str
    run_dir: Path
    resuming: bool
    message: str  # what was decided and why, for the user ("resuming run X: its holder pid 12 is gone")
    created: Path | None = None  # the outermost folder this claim made (the run folder, or runs/ above it)
    lock: FileLock | None = field(default=None, repr=False)


@contextmanager
def claim_run(cfg: NexaConfig, dataset_version: str, layout: Layout, run_id: str | None = None, *,
              name: str | None = None, **work: object) -> Iterator[RunClaim]:
    """Hold a run for the duration of the block: the one asked for (waiting while another process trains it),
    else an interrupted run of the same work (resume), else a new one.

    `work` holds what else defines the run besides the config (a student's init, pairs and KD settings)."""
    key = work_key(cfg, dataset_version, **work)
    claim = (_claim_named(layout, validate_run_id(run_id), key) if run_id
             else _claim_interrupted(layout, key) or _claim_new(layout, name or cfg.name, key, dataset_version,
                                                                 busy=_busy_runs(layout, key)))
    try:
        yield claim
    except Exception as err:
        _settle_failure(claim, err)
        raise
    finally:
        claim.lock.release()


def _claim_named(layout: Layout, run_id: str, key: str) -> RunClaim:
    run_dir = layout.run_dir(run_id)
    if not run_dir.exists():
        try:
            return _take_new(run_dir, run_id, key, f"starting run {run_id}")
        except FileExistsError:
            pass  # made by another process a moment ago: claim it like any existing run
    lock = FileLock(run_dir / LOCK)
    if not lock.acquire(block=False):
        log.warning("waiting for run %s: %s is training it", run_id, holder(run_dir / LOCK) or "another process")
        lock.acquire()
    try:
        return RunClaim(run_id, run_dir, True, _resume_message(run_dir, run_id, key), lock=lock)
    except BaseException:
        lock.release()
        raise


def _resume_message(run_dir: Path, run_id: str, key: str) -> str:
    """The message for resuming run_id, or a NexaError saying why it cannot be resumed as this work."""
    record = read_record(run_dir)
    fix = "omit --run-id to start a new run, or pick an unused id"
    if record is None:
        raise NexaError(f"run {run_id}: {run_dir} exists but has no readable run.json, so its training cannot be "
                        f"resumed; {fix}")
    status = record.get("status")
    if status == "failed":
        raise NexaError(f"run {run_id} failed ({record.get('error', 'no reason recorded')}) and is not resumed; {fix}")
    if record.get("key") != key:
        what = "complete" if status == "complete" else "an unfinished run"
        raise NexaError(f"run {run_id} is {what} of other work (another config, dataset or init); reopening it would "
                        f"overwrite what describes its model; {fix}")
    if status == "complete":  # retraining would rewrite final/ from whatever checkpoints retention left
        raise NexaError(f"run {run_id} is already complete; nothing to train (evaluate, package or deploy it); {fix}")
    return f"resuming run {run_id}"


def _unfinished(layout: Layout, key: str) -> list[Path]:
    if not layout.runs_dir.is_dir():
        return []
    # Run folders only: cleanup's `.deleting-<id>-...` folders (and manifests/) are never runs to resume.
    runs = sorted((p for p in layout.runs_dir.iterdir() if p.is_dir() and RUN_ID_RE.fullmatch(p.name)), reverse=True)
    return [p for p in runs if (r := read_record(p)) and r.get("key") == key and r.get("status") in UNFINISHED]


def _claim_interrupted(layout: Layout, key: str) -> RunClaim | None:
    """The newest unfinished run of this work whose holder is gone; runs still held are left to their holder."""
    for run_dir in _unfinished(layout, key):
        lock = FileLock(run_dir / LOCK)
        if not _acquire_unless_held(lock):
            continue
        if (read_record(run_dir) or {}).get("status") in UNFINISHED:  # not finished while we took the lock
            return RunClaim(run_dir.name, run_dir, True, f"resuming interrupted run {run_dir.name}", lock=lock)
        lock.release()
    return None


def _acquire_unless_held(lock: FileLock, probes: int = 5) -> bool:
    """Take a lock that only a probe (`holder()`, cleanup's check) may hold, for an instant: retry briefly, so a
    probe is not mistaken for a live trainer."""
    for _ in range(probes):
        if lock.acquire(block=False):
            return True
        if holder(lock.path) is not None:
            return False  # held exclusively: a process is training it (a probe's shared lock lets holder() in)
        time.sleep(0.05)
    return False


def _busy_runs(layout: Layout, key: str) -> list[str]:
    return [f"{p.name} ({who})" for p in _unfinished(layout, key) if (who := holder(p / LOCK))]


def _claim_new(layout: Layout, name: str, key: str, dataset_version: str, busy: list[str]) -> RunClaim:
    while True:
        run_id = new_run_id(name)
        message = (f"starting run {run_id}" if not busy else
                   f"starting run {run_id}: the same work is being trained by run {', '.join(busy)}")
        try:
            return _take_new(layout.run_dir(run_id), run_id, key, message, dataset_version=dataset_version)
        except FileExistsError:
            time.sleep(0.2)  # ids have one-second resolution: another process took this second


def _take_new(run_dir: Path, run_id: str, key: str, message: str, **fields) -> RunClaim:
    created = next((p for p in reversed(run_dir.parents) if not p.exists()), run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir()  # atomic: of two processes choosing the same id, exactly one gets here
    lock = FileLock(run_dir / LOCK)
    lock.acquire()
    update_record(run_dir, run_id=run_id, key=key, status="claimed", **fields)
    return RunClaim(run_id, run_dir, False, message, created=created, lock=lock)


def _settle_failure(claim: RunClaim, err: Exception) -> None:
    """A refusal before training began leaves nothing; a later failure is recorded as the run's end."""
    from nexa_core.training.models import first_line

    status = (read_record(claim.run_dir) or {}).get("status")
    if claim.created and status == "claimed" and isinstance(err, NexaError):
        shutil.rmtree(claim.run_dir, ignore_errors=True)
        _remove_empty_parents(claim.run_dir, up_to=claim.created)
    elif status in UNFINISHED:
        update_record(claim.run_dir, status="failed", error=f"{type(err).__name__}: {first_line(err)}")



def _remove_empty_parents(run_dir: Path, up_to: Path) -> None:
    """Remove the folders the claim made above the run, each only while empty: another run may be in them."""
    for folder in run_dir.parents:
        if not folder.is_relative_to(up_to):
            return
        try:
            folder.rmdir()
        except OSError:
            return
