"""The study database: where it is, opening it (a one-line error when it cannot be), and trials of dead processes.

A trial records the pid and host of the process that runs it (user attributes), and that process beats while
the trial trains (heartbeat.py). A later `nexa tune` marks a RUNNING trial FAIL when its process on this host is
gone (pid check) or, whatever host ran it, when its last heartbeat is older than `tune.stale_after_s` (Optuna's
`fail_stale_trials`), so the study counts it and moves on (docs/tuning.md)."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import holder
from nexa_core.config import NexaConfig, TuneConfig
from nexa_core.training.claim import LOCK, UNFINISHED
from nexa_core.training.models import first_line
from nexa_core.training.record import read_record, update_record
from nexa_core.tuning.handoff import STUDY_NAME_RE
from nexa_core.tuning.samplers import direction, make_pruner, make_sampler

log = logging.getLogger(__name__)
UNTAGGED_GRACE_S = 60  # a RUNNING trial without pid/host this old was cut off between ask and tagging
# Optuna warns at every ask on a storage with heartbeats outside `Study.optimize`: `nexa tune` beats itself.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def study_name(cfg: NexaConfig) -> str:
    name = cfg.tune.study or f"{cfg.name}-tune"
    if not STUDY_NAME_RE.fullmatch(name) or ".." in name:
        raise NexaError(f"tune.study {name!r}: use letters, digits, '.', '_' and '-' (it names a folder too)")
    return name


def study_dir(layout: Layout, name: str) -> Path:
    """Where the study's own files live: best.yaml, its lock; the default SQLite database sits one level up."""
    return layout.durable / "tuning" / name


def storage_url(cfg: NexaConfig, layout: Layout) -> str:
    url = cfg.tune.storage or f"sqlite:///{layout.durable / 'tuning' / 'studies.db'}"
    # SQLAlchemy 2.1 takes a bare postgresql:// for psycopg 3; the project ships psycopg2.
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing in it to hide that we can find
        return re.sub(r"//[^@/]*@", "//***@", url)


def open_storage(url: str, tune: TuneConfig) -> optuna.storages.RDBStorage:
    """The study database, with heartbeats every `tune.heartbeat_s` and trials silent `tune.stale_after_s` stale."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}  # parallel trials queue for SQLite's one writer
    else:
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are experimental in Optuna 5.0
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=tune.heartbeat_s,
                                              grace_period=tune.stale_after_s)
    except Exception as err:  # driver errors differ by database; each one means "cannot use this URL"
        raise NexaError(f"tune.storage {safe_url(url)}: cannot open the study database ({first_line(err)}); check "
                        "the URL, that the server runs and the database exists") from None


def open_study(cfg: NexaConfig, name: str, storage, seed: int) -> optuna.Study:
    try:
        study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                    sampler=make_sampler(cfg.tune, seed), pruner=make_pruner(cfg.tune),
                                    direction=direction(cfg.tune.metric))
    except ValueError as err:  # e.g. an existing study optimised in the other direction
        raise NexaError(f"tune.study {name}: {first_line(err)}; pick another study name") from None
    metric = study.user_attrs.get("metric")
    if metric is None:
        study.set_user_attr("metric", cfg.tune.metric)
    elif metric != cfg.tune.metric:
        raise NexaError(f"tune.metric {cfg.tune.metric}: study {name} optimises {metric}; keep its metric or pick "
                        "another study name (tune.study / --study)")
    return study


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study, layout: Layout, stale_after_s: int) -> list[int]:
    """Mark FAIL the RUNNING trials whose process is gone: on this host by its pid, on any host by a heartbeat
    older than `stale_after_s` (the storage's grace period, tune.stale_after_s); their unfinished runs `failed`.
    Returns the numbers of the trials marked."""
    return _fail_dead_here(study, layout) + _fail_silent(study, layout, stale_after_s)


def _fail_dead_here(study: optuna.Study, layout: Layout) -> list[int]:
    here, now, failed = socket.gethostname(), time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = t.user_attrs
        if "host" not in attrs:
            started = t.datetime_start.timestamp() if t.datetime_start else now
            if now - started < UNTAGGED_GRACE_S:
                continue
        elif attrs["host"] != here or pid_alive(int(attrs["pid"])):
            continue
        study.tell(t.number, state=TrialState.FAIL)
        failed.append(t.number)
        why = f"its nexa tune process (pid {attrs.get('pid')} on {attrs.get('host')}) died"
        _log_and_fail_run(study, layout, t, why)
    return failed


def _fail_silent(study: optuna.Study, layout: Layout, stale_after_s: int) -> list[int]:
    """Optuna fails the stale trials (one that never beat is not: _fail_dead_here's untagged case); they are the
    trials RUNNING before and FAIL after. A trial that failed itself in that instant would be counted too; its run
    is no longer unfinished then, and _fail_run leaves it alone."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # public, experimental in Optuna 5.0
        optuna.storages.fail_stale_trials(study)
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if t.number in running:
            failed.append(t.number)
            attrs = t.user_attrs
            _log_and_fail_run(study, layout, t, f"no heartbeat for over {stale_after_s} s from its nexa tune process "
                              f"(pid {attrs.get('pid')} on {attrs.get('host')})")
    return failed


def _log_and_fail_run(study: optuna.Study, layout: Layout, trial, why: str) -> None:
    log.warning("trial %d of study %s marked FAIL: %s", trial.number, study.study_name, why)
    _fail_run(layout, trial.user_attrs.get("run_id"), why)


def _fail_run(layout: Layout, run_id: str | None, why: str) -> None:
    if not run_id or not layout.run_dir(run_id).is_dir():
        return
    run_dir = layout.run_dir(run_id)
    record = read_record(run_dir) or {}
    if record.get("status") in UNFINISHED and holder(run_dir / LOCK) is None:
        update_record(run_dir, status="failed", error=why, tune={**record.get("tune", {}), "state": "failed"})
