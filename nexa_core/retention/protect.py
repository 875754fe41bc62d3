"""Why something must stay: best and latest checkpoints, running runs, deployments, young manifests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import holder
from nexa_core.release.deploy import _stack, current_release, history
from nexa_core.retention.scan import CHECKPOINT_RE, read_json
from nexa_core.training.claim import LOCK, UNFINISHED
from nexa_core.training.record import RECORD  # light: nexa_core.training loads transformers lazily

TRAINER_STATE = "trainer_state.json"


@dataclass
class Guards:
    """Protections that do not depend on a single checkpoint folder."""

    runs: dict[str, list[str]] = field(default_factory=dict)  # run_id -> reasons guarding all its artefacts
    deployed: dict[str, list[str]] = field(default_factory=dict)  # run_id -> reasons guarding release + package
    interrupted: set[str] = field(default_factory=set)  # claimed/running runs whose process is gone
    deploy_unknown: str | None = None  # deploy state unreadable: every release and package stays
    paths: list[tuple[str, str]] = field(default_factory=list)  # (realpath, reason): it and all around it stay
    warnings: list[str] = field(default_factory=list)

    def guard_run(self, run_id: str, reason: str) -> None:
        self.runs.setdefault(run_id, []).append(reason)

    def for_path(self, path: Path) -> list[str]:
        """Reasons from referenced paths: the path itself, anything inside it, or a folder holding it."""
        real = os.path.realpath(path)
        return [why for ref, why in self.paths
                if ref == real or ref.startswith(real + os.sep) or real.startswith(ref + os.sep)]

    def add_path(self, value: object, reason: str, roots: tuple[Path, ...]) -> None:
        if not isinstance(value, str) or not value.strip():
            return
        path = Path(value).expanduser()
        # A relative path cannot be placed for sure: guard every place it could mean.
        for candidate in [path] if path.is_absolute() else [root / path for root in roots]:
            self.paths.append((os.path.realpath(candidate), reason))


def read_run_record(layout: Layout, run_id: str, guards: Guards) -> dict:
    """The run's run.json (or {}). An unreadable record, or a claimed/running one whose run.lock a live process
    holds, guards everything of the run; a claimed/running one nobody holds is noted in `guards.interrupted`."""
    path = layout.run_dir(run_id) / RECORD
    record, ok = read_json(path)
    if not ok or (record is not None and not isinstance(record, dict)):
        guards.guard_run(run_id, f"{RECORD} unreadable; cannot tell if it is running")
        guards.warnings.append(f"{path} is unreadable: run {run_id} is kept whole; fix or remove that file")
        return {}
    record = record or {}
    status = record.get("status")
    if status in UNFINISHED:
        who = holder(layout.run_dir(run_id) / LOCK)
        if who:
            guards.guard_run(run_id, f"run is {status} ({who} holds its {LOCK})")
        else:
            guards.interrupted.add(run_id)
    return record


def best_checkpoints(run_id: str, record: dict, ckpt_dir: Path, ckpts: list[tuple[int, Path]], guards: Guards,
                     roots: tuple[Path, ...]) -> dict[str, list[str]]:
    """checkpoint name -> reasons, from run.json `train.best_checkpoint` and from HF's
    `best_model_checkpoint` in the newest readable trainer_state.json."""
    found: dict[str, list[str]] = {}

    def note(value: object, reason: str) -> None:
        if isinstance(value, str) and CHECKPOINT_RE.fullmatch(PurePath(value).name):
            found.setdefault(PurePath(value).name, []).append(reason)
            here = os.path.realpath(ckpt_dir)
            if PurePath(value).is_absolute() and os.path.realpath(Path(value).parent) != here:
                guards.add_path(value, f"{reason} of {run_id}", roots)  # it lives elsewhere: guard it there too

    train = record.get("train")
    if isinstance(train, dict):
        note(train.get("best_checkpoint"), "best checkpoint (run.json)")
    for _, ckpt in reversed(ckpts):
        state, _ = read_json(ckpt / TRAINER_STATE)
        if isinstance(state, dict):
            note(state.get("best_model_checkpoint"), f"best checkpoint ({ckpt.name}/{TRAINER_STATE})")
            break
    return found


def latest_checkpoints(ckpts: list[tuple[int, Path]], keep_latest: int) -> dict[str, list[str]]:
    """The newest `keep_latest` by step, and the newest `keep_latest` complete ones (HF writes
    trainer_state.json last), so a crash mid-save never leaves fewer than that many to resume from."""
    found: dict[str, list[str]] = {}
    if keep_latest <= 0:
        return found
    for _, ckpt in ckpts[-keep_latest:]:
        found.setdefault(ckpt.name, []).append(f"one of the latest {keep_latest} checkpoints")
    complete = 0
    for _, ckpt in reversed(ckpts):
        if complete >= keep_latest:
            break
        state, ok = read_json(ckpt / TRAINER_STATE)
        if ok and isinstance(state, dict):
            complete += 1
            found.setdefault(ckpt.name, []).append(f"one of the latest {keep_latest} complete checkpoints")
    return found


def deploy_guards(layout: Layout, guards: Guards) -> None:
    """The deployed release, the rollback target and the last 2 releases in deploy history."""
    try:
        current = current_release(layout)
        records = history(layout)
    except NexaError as exc:
        guards.deploy_unknown = f"deploy state unreadable ({exc})"
        guards.warnings.append(f"every release and package is kept: {exc}")
        return
    if current:
        guards.deployed.setdefault(current, []).append("deployed (current_model)")
    stack = _stack(records)
    if stack:
        guards.deployed.setdefault(str(stack[-1]), []).append("latest release in deploy history")
    if len(stack) >= 2:
        guards.deployed.setdefault(str(stack[-2]), []).append("rollback target")
    recent: list[str] = []
    for record in reversed(records):
        run_id = str(record.get("run_id"))
        if run_id not in recent:
            recent.append(run_id)
        if len(recent) == 2:
            break
    for run_id in recent:
        guards.deployed.setdefault(run_id, []).append("one of the last 2 releases in deploy history")


def _created_at(doc: dict) -> float | None:
    try:
        return datetime.fromisoformat(str(doc["created_at"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError, TypeError, OverflowError):
        return None


def manifest_guards(layout: Layout, cutoff: float | None, guards: Guards, roots: tuple[Path, ...]) -> None:
    """What manifests younger than the window point at (`checkpoint`, `run_dir`); with no window, every
    manifest counts. A manifest's age is the newer of its mtime and its `created_at`."""
    try:
        manifests = sorted(layout.manifests_dir.glob("*.json"))
    except OSError:
        return
    for path in manifests:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        doc, _ = read_json(path)
        created = _created_at(doc) if isinstance(doc, dict) else None
        if cutoff is not None and max(mtime, created or mtime) < cutoff:
            continue
        if not isinstance(doc, dict):
            guards.guard_run(path.stem, f"manifest {path.name} is recent but unreadable")
            guards.warnings.append(f"{path} is unreadable: run {path.stem} is kept whole; fix or remove it")
            continue
        for key in ("checkpoint", "run_dir"):
            guards.add_path(doc.get(key), f"referenced by recent manifest {path.name} ({key})", roots)
