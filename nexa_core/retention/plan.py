"""`plan_cleanup`: decide, without touching anything, what a cleanup would delete and why."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import in_use
from nexa_core.retention import scan
from nexa_core.retention.model import DURABLE_KINDS, KINDS, Candidate, Plan
from nexa_core.retention.protect import (
    Guards,
    best_checkpoints,
    deploy_guards,
    latest_checkpoints,
    manifest_guards,
    read_run_record,
)
from nexa_core.retention.size import format_age, format_days, format_size
from nexa_core.training.claim import LOCK

DAY = 86400.0
LEFTOVER_GRACE = 3600.0  # seconds a temp package or unpack folder must sit untouched before it counts as left over


def plan_cleanup(layout: Layout, *, days: float | None, prune_size: int | None, keep_latest: int = 2,
                 now: float | None = None, kinds: Iterable[str] = KINDS) -> Plan:
    """What `cleanup --days DAYS --prune-size SIZE` would delete; nothing is touched.

    Prune rules (a candidate matching either one goes, unless something protects it):
      * age: its newest mtime (the folder or anything in it) is older than `now - days`;
      * size (scratch only: checkpoints and run folders): it is larger than `prune_size` bytes, like
        find's `-size +2G`. Packages and releases are pruned by age only, so a package built for a deploy
        that has not happened yet is never removed just for being big.
    A run's whole scratch folder is a candidate once nothing in it is newer than the window; it goes
    only if every checkpoint in it may go too, otherwise only its prunable checkpoints do.

    Never deleted: the best checkpoint of a run (run.json `train.best_checkpoint`, and
    `best_model_checkpoint` in the newest readable trainer_state.json), each run's latest `keep_latest`
    checkpoints (and latest `keep_latest` complete ones), everything of a run whose run.json cannot be
    read or says `claimed`/`running` while a live process holds its run.lock, the release and package of
    the deployed run, of the rollback target and of the last 2 runs in deploy history (everything, if the
    deploy state cannot be read), and anything a manifest younger than the window (every manifest, without
    `days`) names in `checkpoint` or `run_dir`. Run folders under `<durable>/runs/` holding final/ are never
    candidates.

    Crash leftovers (kind `leftover`, and `run` for a scratch folder): a `claimed`/`running` run whose process
    is gone is interrupted, kept whole so it can resume while anything in it (scratch or run folder) changed
    within the window (always, without `days`); older, it is abandoned: its whole scratch folder goes, and its
    run folder too unless it has final/. Temp packages, unpack folders and new current_model links go, whatever
    `days` and `prune_size` say, once no live process holds their writer's flock and they are LEFTOVER_GRACE old.
    """
    days, prune_size, keep_latest, kinds = _validated(days, prune_size, keep_latest, kinds)
    now = time.time() if now is None else float(now)
    cutoff = None if days is None else now - days * DAY
    plan = Plan(layout=layout, days=days, prune_size=prune_size, keep_latest=keep_latest, now=now, kinds=kinds)
    roots = (layout.durable, layout.scratch)
    guards = Guards()
    deploy_guards(layout, guards)
    manifest_guards(layout, cutoff, guards, roots)

    runs, pkgs, rels = scan.scratch_runs(layout), scan.packages(layout), scan.releases(layout)
    run_dirs = dict(scan.durable_runs(layout))
    # First pass: every guard is taken before any candidate is judged (a best checkpoint may be named by path).
    records = {run_id: read_run_record(layout, run_id, guards)
               for run_id in sorted({run_id for run_id, _ in [*runs, *pkgs, *rels]} | set(run_dirs))}
    abandoned = _abandoned_runs(layout, guards, dict(runs), cutoff, days)
    per_run = {}
    chosen: list[Candidate] = []
    for run_id, run_path in runs:
        if run_id in abandoned and "run" in kinds:
            chosen += _abandoned_candidate(run_path, "run", run_id, layout.run_dir(run_id) / LOCK, guards, days,
                                           "whole scratch folder")
            continue
        ckpts = scan.checkpoints(run_path)
        per_run[run_id] = (run_path, ckpts, best_checkpoints(run_id, records[run_id], run_path / "checkpoints", ckpts,
                                                           guards, roots),
                           latest_checkpoints(ckpts, keep_latest))

    for run_id, (run_path, ckpts, best, latest) in per_run.items():
        ckpt_cands = []
        for step, path in ckpts:
            cand = _candidate(path, "checkpoint", run_id, step)
            if cand is None:
                continue
            cand.protected_by += guards.runs.get(run_id, []) + best.get(path.name, []) + latest.get(path.name, [])
            cand.protected_by += guards.for_path(path)
            _judge(cand, cutoff, days, prune_size, by_size=True)
            ckpt_cands.append(cand)
        run_cand = _candidate(run_path, "run", run_id) if "run" in kinds and cutoff is not None else None
        if run_cand is not None and run_cand.mtime < cutoff:
            run_cand.protected_by += guards.runs.get(run_id, []) + guards.for_path(run_path)
            run_cand.protected_by += [f"holds kept {c.path.name}" for c in ckpt_cands if not c.prunable]
            _judge(run_cand, cutoff, days, prune_size, by_size=True)
            chosen.append(run_cand)
            if run_cand.prunable:
                run_cand.why += f" (whole scratch folder, {len(ckpt_cands)} checkpoints)"
                continue  # its checkpoints go with it
        if "checkpoint" in kinds:
            chosen += ckpt_cands

    for kind, found in (("package", pkgs), ("release", rels)):
        if kind not in kinds:
            continue
        for run_id, path in found:
            cand = _candidate(path, kind, run_id)
            if cand is None:
                continue
            cand.protected_by += guards.runs.get(run_id, []) + guards.deployed.get(run_id, [])
            cand.protected_by += [guards.deploy_unknown] if guards.deploy_unknown else []
            cand.protected_by += guards.for_path(path)
            _judge(cand, cutoff, days, prune_size, by_size=kind not in DURABLE_KINDS)
            chosen.append(cand)

    if "leftover" in kinds:
        for run_id in sorted(abandoned):
            run_dir = layout.run_dir(run_id)
            if (run_dir / "final").exists():
                guards.warnings.append(f"run {run_id} was interrupted after writing final/ (run.json still says "
                                     f"{records[run_id].get('status')}): its run folder {run_dir} is kept; check it")
            elif run_dir.is_dir():
                chosen += _abandoned_candidate(run_dir, "leftover", run_id, run_dir / LOCK, guards, days,
                                               "half-written run folder")
        for item in scan.crash_leftovers(layout):
            chosen += _leftover_candidate(item, now)

    chosen.sort(key=lambda c: (KINDS.index(c.kind), c.run_id, c.step or 0, str(c.path)))
    plan.delete = [c for c in chosen if c.prunable]
    plan.keep = [c for c in chosen if not c.prunable]
    plan.leftovers = scan.leftovers(layout)
    plan.warnings = guards.warnings
    return plan


def _abandoned_runs(layout: Layout, guards: Guards, scratch: dict[str, Path], cutoff: float | None,
                    days: float | None) -> set[str]:
    """Interrupted runs nothing touched within the window: crash leftovers now. Younger ones stay, to resume."""
    abandoned = set()
    for run_id in sorted(guards.interrupted):
        newest = max((_newest(p) for p in (layout.run_dir(run_id), scratch.get(run_id)) if p is not None), default=0.0)
        if cutoff is not None and newest < cutoff:
            abandoned.add(run_id)
        else:
            until = f" until nothing in it changed for {format_days(days)}" if days is not None else ""
            guards.guard_run(run_id, f"interrupted run (no live process holds its {LOCK}): kept so it can resume{until}")
    return abandoned


def _abandoned_candidate(path: Path, kind: str, run_id: str, lock: Path, guards: Guards, days: float,
                         what: str) -> list[Candidate]:
    """The scratch folder (checkpoints and all) or the final-less run folder of an abandoned interrupted run:
    a crash leftover, not a run to resume, so its best and latest checkpoints are not kept for it."""
    cand = _candidate(path, kind, run_id)
    if cand is None:
        return []
    cand.hold = lock  # taken while it goes, so a process resuming the run meanwhile keeps it
    cand.reasons.append(f"{what} of an interrupted run abandoned: no live process holds it and nothing in it "
                        f"changed in {format_days(days)}")
    cand.protected_by += guards.for_path(path) + guards.deployed.get(run_id, [])
    _explain(cand, [])
    return [cand]


def _leftover_candidate(item: scan.CrashLeftover, now: float) -> list[Candidate]:
    """A temp package, unpack folder or link: removed once its writer's flock is free and it is LEFTOVER_GRACE old
    (the grace covers the instant between its creation and its flock, and writers that take none)."""
    cand = _candidate(item.path, "leftover", item.run_id)
    if cand is None:
        return []
    cand.hold = item.hold
    cand.reasons.append(item.what)
    if in_use(item.hold):
        cand.protected_by.append("in use: a live process holds it")
    elif now - cand.mtime < LEFTOVER_GRACE:
        cand.protected_by.append(f"modified within {format_age(LEFTOVER_GRACE)}: it may still be being written")
    _explain(cand, [])
    return [cand]


def _newest(path: Path) -> float:
    try:
        return scan.tree_stats(path)[1]
    except FileNotFoundError:
        return 0.0


def _candidate(path: Path, kind: str, run_id: str, step: int | None = None) -> Candidate | None:
    try:
        size, mtime = scan.tree_stats(path)
    except FileNotFoundError:
        return None  # vanished while we looked
    return Candidate(path=path, kind=kind, run_id=run_id, size_bytes=size, mtime=mtime, step=step)


def _judge(cand: Candidate, cutoff: float | None, days: float | None, prune_size: int | None, *,
           by_size: bool) -> None:
    """Fill `reasons` (rules matched) and `why` (the table's explanation)."""
    misses = []
    if cutoff is not None:
        if cand.mtime < cutoff:
            cand.reasons.append(f"older than {format_days(days)}")
        else:
            misses.append(f"modified within {format_days(days)}")
    if prune_size is not None and by_size:
        if cand.size_bytes > prune_size:
            cand.reasons.append(f"larger than {format_size(prune_size)}")
        else:
            misses.append(f"not larger than {format_size(prune_size)}")
    _explain(cand, misses, prune_size)


def _explain(cand: Candidate, misses: list[str], prune_size: int | None = None) -> None:
    """`why`: the reasons when it goes, the protections (or the rules it missed) when it stays."""
    if cand.prunable:
        cand.why = "; ".join(cand.reasons)
    elif cand.protected_by:
        cand.why = "; ".join(dict.fromkeys(cand.protected_by))
        if cand.reasons:
            cand.why += f" (otherwise: {'; '.join(cand.reasons)})"
    else:
        if not misses:
            misses.append("pruned by --days only" if prune_size is not None else "no --days or --prune-size given")
        cand.why = "; ".join(misses)


def _validated(days, prune_size, keep_latest, kinds):
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days) or days < 0:
            raise NexaError(f"--days {days!r} must be a number of days >= 0, e.g. --days 7")
        days = float(days)
    if prune_size is not None:
        if isinstance(prune_size, bool) or not isinstance(prune_size, int) or prune_size < 0:
            raise NexaError(f"--prune-size {prune_size!r} must be a size in bytes >= 0, e.g. --prune-size +2G")
    if isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 0:
        raise NexaError(f"--keep-latest {keep_latest!r} must be a whole number >= 0, e.g. --keep-latest 2")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise NexaError(f"unknown cleanup kind(s) {unknown}; choose from {', '.join(KINDS)}")
    return days, prune_size, keep_latest, kinds
