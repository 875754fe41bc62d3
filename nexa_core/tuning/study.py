"""The study database: where it is, opening it (a one-line error when it cannot be), and trials of dead processes.

A trial records the pid and host of the process that runs it (user attributes). A later `nexa tune` on the same
host marks a RUNNING trial whose process is gone as FAIL, so the study counts it and moves on. A trial run from
another host is left alone: its process cannot be checked from here (docs/tuning.md)."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import holder
from nexa_core.config import NexaConfig
from nexa_core.training.claim import LOCK, UNFINISHED
from nexa_core.training.models import first_line
from nexa_core.training.record import read_record, update_record
from nexa_core.tuning.samplers import direction, make_pruner, make_sampler

log = logging.getLogger(__name__)
STUDY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
UNTAGGED_GRACE_S = 60  # a RUNNING trial without pid/host this old was cut off between ask and tagging


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


def open_storage(url: str) -> optuna.storages.RDBStorage:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}  # parallel trials queue for SQLite's one writer
    else:
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
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


def fail_dead_trials(study: optuna.Study, layout: Layout) -> list[int]:
    """Mark RUNNING trials of dead processes on this host FAIL (and their unfinished runs `failed`)."""
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
        log.warning("trial %d of study %s marked FAIL: %s", t.number, study.study_name, why)
        _fail_run(layout, attrs.get("run_id"), why)
    return failed


def _fail_run(layout: Layout, run_id: str | None, why: str) -> None:
    if not run_id or not layout.run_dir(run_id).is_dir():
        return
    run_dir = layout.run_dir(run_id)
    record = read_record(run_dir) or {}
    if record.get("status") in UNFINISHED and holder(run_dir / LOCK) is None:
        update_record(run_dir, status="failed", error=why, tune={**record.get("tune", {}), "state": "failed"})
