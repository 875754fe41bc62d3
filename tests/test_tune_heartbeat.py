"""Trial heartbeats of `nexa tune`: a running trial beats while it trains, and a RUNNING trial whose beats stopped
is failed by the next `nexa tune` whatever host ran it (its run `failed` too), on SQLite and on PostgreSQL, where
trials of several hosts share one study. No training: studies are built directly on the database."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.training.record import read_record, update_record
from nexa_core.tuning.heartbeat import beating
from nexa_core.tuning.study import fail_dead_trials, open_storage, open_study
from tests.postgres_helpers import fresh_database

HEARTBEATS = sa.table("trial_heartbeats", sa.column("trial_id"), sa.column("heartbeat", sa.DateTime))


def _cfg(**tune):
    return validate_config({"data": {"path": "x.csv"}, "tune": tune})


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'studies.db'}"
        return
    with fresh_database("nexa_hb") as name:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def _heartbeat(rdb, trial):
    with rdb.engine.connect() as conn:
        return conn.execute(sa.select(HEARTBEATS.c.heartbeat).where(HEARTBEATS.c.trial_id == trial._trial_id)
                            ).scalar_one_or_none()


def _age_heartbeat(rdb, trial, by: timedelta) -> None:
    """As if the trial's process stopped beating `by` ago (the database's clock, as Optuna compares)."""
    old = _heartbeat(rdb, trial)
    with rdb.engine.begin() as conn:
        conn.execute(sa.update(HEARTBEATS).where(HEARTBEATS.c.trial_id == trial._trial_id).values(heartbeat=old - by))


def _trial_of_another_host(study, layout: Layout, run_id: str):
    trial = study.ask()
    trial.set_user_attr("pid", 4242)
    trial.set_user_attr("host", "another-host")
    trial.set_user_attr("run_id", run_id)
    layout.run_dir(run_id).mkdir(parents=True)
    update_record(layout.run_dir(run_id), status="running", tune={"study": "hb", "trial_number": trial.number,
                                                                    "state": "running"})
    return trial


def test_a_trial_of_another_host_whose_heartbeat_stopped_is_failed_with_its_run(url, tmp_path):
    cfg = _cfg(heartbeat_s=30, stale_after_s=300)
    layout = Layout(tmp_path / "scratch", tmp_path / "durable", tmp_path / "shared")
    rdb = open_storage(url, cfg.tune)
    study = open_study(cfg, "hb", rdb, seed=0)
    silent = _trial_of_another_host(study, layout, "trial_20260101_000001")
    alive = _trial_of_another_host(study, layout, "trial_20260101_000002")
    for trial in (silent, alive):
        rdb.record_heartbeat(trial._trial_id)
    _age_heartbeat(rdb, silent, timedelta(seconds=301))
    _age_heartbeat(rdb, alive, timedelta(seconds=200))  # late, but within tune.stale_after_s

    assert fail_dead_trials(study, layout, cfg.tune.stale_after_s) == [silent.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {silent.number: TrialState.FAIL, alive.number: TrialState.RUNNING}
    record = read_record(layout.run_dir("trial_20260101_000001"))
    assert record["status"] == "failed" and record["tune"]["state"] == "failed"
    assert record["error"] == "no heartbeat for over 300 s from its nexa tune process (pid 4242 on another-host)"
    assert read_record(layout.run_dir("trial_20260101_000002"))["status"] == "running"
    assert fail_dead_trials(study, layout, cfg.tune.stale_after_s) == []  # counted once
    rdb.engine.dispose()


def test_a_running_trial_beats_until_its_block_ends(tmp_path):
    cfg = _cfg(heartbeat_s=1, stale_after_s=2)
    rdb = open_storage(f"sqlite:///{tmp_path / 'studies.db'}", cfg.tune)
    trial = open_study(cfg, "hb", rdb, seed=0).ask()
    with beating(rdb, trial) as thread:
        first = _wait_for(lambda: _heartbeat(rdb, trial))  # the first beat comes at once
        later = _wait_for(lambda: (hb := _heartbeat(rdb, trial)) > first and hb)
        assert thread.is_alive() and thread.daemon
    assert later > first
    assert not thread.is_alive()
    assert thread not in threading.enumerate()


def test_a_failing_beat_warns_once_and_the_beats_go_on(caplog):
    calls, recovered = [], threading.Event()

    def record_heartbeat(trial_id):
        calls.append(trial_id)
        if len(calls) <= 3:
            raise ConnectionError("server closed the connection unexpectedly\n\tThis probably means ...")
        recovered.set()

    storage = SimpleNamespace(get_heartbeat_interval=lambda: 0.01, record_heartbeat=record_heartbeat)
    with caplog.at_level(logging.WARNING, logger="nexa_core.tuning.heartbeat"):
        with beating(storage, SimpleNamespace(_trial_id=17, number=3)) as thread:
            assert recovered.wait(10)
    assert not thread.is_alive() and set(calls) == {17}
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["trial 3: a heartbeat did not reach the study database (server closed the connection "
                        "unexpectedly); retrying every 0.01 s"]


def test_heartbeats_off_in_the_storage_start_no_thread():
    with beating(SimpleNamespace(get_heartbeat_interval=lambda: None), SimpleNamespace(number=0)) as thread:
        assert thread is None


@pytest.mark.parametrize("tune", [{"heartbeat_s": 30, "stale_after_s": 30}, {"heartbeat_s": 300}])
def test_stale_after_must_exceed_the_heartbeat(tune):
    with pytest.raises(NexaError) as err:
        _cfg(**tune)
    assert "\n" not in str(err.value)
    assert "tune.stale_after_s: must exceed tune.heartbeat_s" in str(err.value)


def _wait_for(probe, timeout: float = 10.0):
    """The probe's first truthy value; a hang guard, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")



def test_a_trial_failed_by_another_host_while_it_trained_ends_in_one_line(tmp_path, monkeypatch):
    """Its beats stopped long enough (database unreachable, machine suspended) for another host to fail it: when
    it finishes, telling the study is refused, and the error says what happened instead of Optuna's."""
    from nexa_core.tuning import steps
    from nexa_core.tuning.handoff import TrialOutcome

    cfg = validate_config({"data": {"path": "x.csv"}, "tune": {"storage": f"sqlite:///{tmp_path / 's.db'}"},
                           "storage": {"scratch": str(tmp_path), "durable": str(tmp_path), "shared": str(tmp_path)}})
    opened = steps.open_study(cfg, Layout.from_storage(cfg.storage))
    trial = opened.study.ask()

    def trained_while_failed_elsewhere(*args, **kwargs):
        opened.study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)  # the other host
        return TrialOutcome(trial.number, {}, "complete", 0.9, "tiny-trial_20261130_000000", steps=4)

    monkeypatch.setattr(steps, "run_trial", trained_while_failed_elsewhere)
    with pytest.raises(NexaError, match=r"^trial 0: the study already marked it failed .* its run "
                                        r"tiny-trial_20261130_000000 is recorded but does not count"):
        steps.run_and_tell(opened, trial, {}, cfg.model_dump(mode="json"), None, Layout.from_storage(cfg.storage), None)
    assert opened.study.trials[0].state == TrialState.FAIL


def test_the_pruning_reporter_stops_a_trial_failed_elsewhere_instead_of_crashing(tmp_path):
    from transformers import TrainerControl

    from nexa_core.tuning.trial import PruningReporter

    rdb = open_storage(f"sqlite:///{tmp_path / 's.db'}", _cfg().tune)
    study = open_study(_cfg(), "s", rdb, seed=1)
    trial = study.ask()
    reporter, control = PruningReporter(trial, "accuracy"), TrainerControl()
    reporter.on_evaluate(None, SimpleNamespace(global_step=2), control, metrics={"eval_accuracy": 0.7})
    assert not control.should_training_stop  # reported, not pruned (no pruner)
    rdb.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)  # another host failed it
    reporter.on_evaluate(None, SimpleNamespace(global_step=4), control, metrics={"eval_accuracy": 0.8})
    assert control.should_training_stop and reporter.pruned_at is None
