"""`apply_plan`: delete what a plan lists, one atomic rename per candidate, optionally archiving first."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import exclusive_if_free
from nexa_core.release.deploy import _locked, current_release
from nexa_core.retention import scan
from nexa_core.retention.model import Candidate, Plan
from nexa_core.retention.plan import plan_cleanup


def apply_plan(plan: Plan, archive: Callable[[Path], None] | None = None) -> dict:
    """Delete `plan.delete`; returns {freed_bytes, deleted, skipped, leftovers_cleaned, errors}.

    Each candidate is renamed to a hidden `.deleting-<name>-<uuid>` sibling (one atomic rename: it is
    gone entirely or present entirely) and only then removed; `.deleting-*` leftovers of a crashed apply
    are removed first. `archive(path)`, when given, runs before the rename (not for crash leftovers); if it
    raises, that candidate is skipped, not deleted. The plan is re-made first with the same settings and `now`, and a candidate
    is skipped (with the reason) when it is no longer prunable there (a run resumed, a deploy happened,
    a manifest appeared) or when anything in it changed since the plan.
    `deleted` lists Candidates, `skipped` (Candidate, reason) pairs, `errors` lines for removals that
    left a `.deleting-*` behind (cleaned on the next apply).
    """
    errors: list[str] = []
    cleaned = clean_leftovers(plan.layout, errors)
    fresh = plan_cleanup(plan.layout, days=plan.days, prune_size=plan.prune_size, keep_latest=plan.keep_latest,
                         now=plan.now, kinds=plan.kinds)
    allowed = [os.path.realpath(c.path) for c in fresh.delete]
    kept_why = {c.key: c.why for c in fresh.keep}
    deleted: list[Candidate] = []
    skipped: list[tuple[Candidate, str]] = []
    for cand in plan.delete:
        if not os.path.lexists(cand.path):
            skipped.append((cand, "already gone"))
            continue
        real = os.path.realpath(cand.path)
        if not any(real == ok or real.startswith(ok + os.sep) for ok in allowed):
            skipped.append((cand, f"no longer prunable: {kept_why.get(cand.key, 'changed since the plan')}"))
            continue
        if archive is not None and cand.kind != "leftover":  # crash debris is not worth a durable copy
            try:
                archive(cand.path)
            except Exception as exc:  # noqa: BLE001 - any archive failure means: keep it
                skipped.append((cand, f"archive failed, not deleted: {type(exc).__name__}: {exc}"))
                continue
        with _mtime_kept(cand.path.parent):  # deleting a checkpoint must not make its run look fresh
            try:
                tomb = _rename_away(plan.layout, cand)
            except (OSError, NexaError) as exc:
                skipped.append((cand, f"not deleted: {exc}"))
                continue
            deleted.append(cand)
            try:
                _purge(tomb)
            except OSError as exc:
                errors.append(f"{tomb}: {exc}; it is removed on the next cleanup")
    return {"freed_bytes": sum(c.size_bytes for c in deleted), "deleted": deleted, "skipped": skipped,
            "leftovers_cleaned": cleaned, "errors": errors}


def clean_leftovers(layout: Layout, errors: list[str] | None = None) -> list[Path]:
    """Remove `.deleting-*` entries an interrupted apply left behind; returns what was removed."""
    cleaned = []
    for path in scan.leftovers(layout):
        try:
            with _mtime_kept(path.parent):
                _purge(path)
            cleaned.append(path)
        except OSError as exc:
            if errors is not None:
                errors.append(f"{path}: {exc}")
    return cleaned


def _rename_away(layout: Layout, cand: Candidate) -> Path:
    """The atomic step: after it the candidate no longer exists under its name."""
    with contextlib.ExitStack() as held:
        # A crash leftover's writer (or a resumed run's process) holds its flock while in use: take it, never wait.
        if cand.hold is not None and not held.enter_context(exclusive_if_free(cand.hold)):
            raise NexaError(f"{cand.path} is in use by a live process now")
        size, mtime = scan.tree_stats(cand.path)
        if mtime > cand.mtime:
            raise NexaError(f"{cand.path} changed since the plan (newer files); plan again")
        tomb = cand.path.with_name(f"{scan.LEFTOVER_PREFIX}{cand.path.name}-{uuid.uuid4().hex}")
        if cand.kind == "release":  # under deploy's lock, so a rollback or deploy cannot pick it meanwhile
            with _locked(layout):
                if current_release(layout) == cand.run_id:
                    raise NexaError(f"{cand.path} is deployed now")
                os.rename(cand.path, tomb)
        else:
            os.rename(cand.path, tomb)
    _fsync_dir(tomb.parent)
    return tomb


@contextlib.contextmanager
def _mtime_kept(folder: Path) -> Iterator[None]:
    """Restore `folder`'s mtime afterwards: ages are newest mtimes, and removing an entry bumps the folder's."""
    try:
        before = os.stat(folder)
    except OSError:
        before = None
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(OSError):
                os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))


def _purge(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
