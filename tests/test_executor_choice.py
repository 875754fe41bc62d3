"""The executor is configuration: NEXA_EXECUTOR picks in-process (the default), multiprocess or Celery, and Celery
brings the S3 hand-off of step outputs; bad values are one line naming the variable. Every step in pool `gpu`, and
no other, is routed to the `gpu` queue. The lost-worker watch of the Celery executor, on stand-ins for Celery."""

from __future__ import annotations

import dagster as dg
import pytest

from nexa_core.common.errors import NexaError
from nexa_dagster.execution import choice
from nexa_dagster.execution.celery_settings import CelerySettings
from nexa_dagster.execution.handoff_io import handoff_s3_io_manager
from nexa_dagster.resources import recipe_resource


@pytest.mark.parametrize("value, executor", [(None, "in_process"), ("", "in_process"), ("multiprocess", "multiprocess"),
                                             ("celery", "celery"), ("in-process", "in_process"), ("k8s", "k8s")])
def test_nexa_executor_picks_the_executor(monkeypatch, value, executor):
    monkeypatch.delenv("NEXA_EXECUTOR", raising=False)
    if value is not None:
        monkeypatch.setenv("NEXA_EXECUTOR", value)
    assert choice.executor().name == executor
    # Only Celery needs outputs on S3; the others keep Dagster's filesystem default.
    assert ("io_manager" in choice.io_resources()) == (executor == "celery")


def test_a_bad_executor_is_one_line_naming_the_choices(monkeypatch):
    monkeypatch.setenv("NEXA_EXECUTOR", "kubernetes")
    with pytest.raises(NexaError, match=r"NEXA_EXECUTOR='kubernetes' is not an executor; set it to in_process, "
                                        r"multiprocess, celery, k8s"):
        choice.executor()


def test_celery_without_an_s3_prefix_says_what_to_set(monkeypatch):
    monkeypatch.delenv("NEXA_S3_PREFIX", raising=False)
    with pytest.raises(NexaError, match="NEXA_EXECUTOR=celery needs NEXA_S3_PREFIX"):
        handoff_s3_io_manager(dg.build_init_resource_context(resources={"nexa": recipe_resource()}))


def test_the_broker_password_is_never_shown(monkeypatch):
    monkeypatch.setenv("NEXA_CELERY_BROKER", "amqp://nexa:s3cret@rabbit.internal:5672/prod")
    settings = CelerySettings.from_env()
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.public_broker
    assert settings.public_broker == "amqp://nexa:***@rabbit.internal:5672/prod"
    monkeypatch.setenv("NEXA_CELERY_BROKER", "http://rabbit:5672")
    with pytest.raises(NexaError, match="NEXA_CELERY_BROKER has scheme 'http'"):
        CelerySettings.from_env()


def test_every_gpu_pool_step_and_only_those_go_to_the_gpu_queue():
    from nexa_dagster.definitions import defs

    nodes = [defs.resolve_assets_def(k).get_op_def_for_asset_key(k) for k in defs.resolve_all_asset_keys()]
    routed = {node.name: (node.pool, node.tags.get("dagster-celery/queue")) for node in nodes}
    assert {name for name, (pool, _) in routed.items() if pool == "gpu"} >= {"trained_model", "student_model"}
    for name, (pool, queue) in routed.items():
        assert (queue == "gpu") == (pool == "gpu"), f"{name}: pool {pool}, queue {queue}"


class FakeResult:
    def __init__(self, state="PENDING", info=None, error=None):
        self.state, self.info, self.done, self.revoked, self.error = state, info, False, False, error

    def ready(self):
        return self.done

    def get(self):
        if self.error:
            raise self.error
        return ["the step's own events"]

    def revoke(self):
        self.revoked = True


class FakeControl:
    def __init__(self):
        self.alive, self.pings = True, []

    def ping(self, destination, timeout):
        self.pings.append(destination)
        return [{destination[0]: {"ok": "pong"}}] if self.alive else []


def _watched(result, control, misses=2):
    from types import SimpleNamespace

    from nexa_dagster.execution.watched import WatchedResult

    return WatchedResult(result, SimpleNamespace(control=control), lambda why, cls: [f"{cls}: {why}"],
                         check_seconds=0, misses=misses)


def test_a_queued_step_is_never_lost_however_long_it_waits():
    control = FakeControl()
    control.alive = False
    watched = _watched(FakeResult("PENDING"), control)
    assert not any(watched.ready() for _ in range(10)) and control.pings == []


def test_a_running_step_is_lost_after_its_worker_misses_pings_in_a_row():
    result, control = FakeResult("STARTED", {"hostname": "gpu-1@node7", "pid": 42}), FakeControl()
    watched = _watched(result, control)
    assert not watched.ready() and not watched.ready()  # answering
    control.alive = False
    assert not watched.ready()  # one miss: could be a slow reply
    control.alive = True
    assert not watched.ready()  # answered again: the count starts over
    control.alive = False
    assert not watched.ready() and watched.ready()  # two in a row: lost
    [failure] = watched.get()
    assert failure.startswith("WorkerLost: celery worker gpu-1@node7 stopped answering while it ran the step")
    assert control.pings[-1] == ["gpu-1@node7"]


def test_a_finished_step_returns_its_own_events():
    result = FakeResult("SUCCESS")
    result.done = True
    assert _watched(result, FakeControl()).get() == ["the step's own events"]


def test_a_task_that_failed_in_its_worker_is_the_steps_failure_and_a_revoked_one_is_left_to_the_loop():
    from billiard.exceptions import WorkerLostError
    from celery.exceptions import TaskRevokedError

    result = FakeResult("FAILURE", error=WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 3."))
    result.done = True  # the pool process running it was OOM-killed; its worker lives on and reports it
    assert _watched(result, FakeControl()).get() == [
        "WorkerLostError: its celery task failed in the worker: WorkerLostError: Worker exited prematurely: "
        "signal 9 (SIGKILL) Job: 3."]
    result.error = TaskRevokedError("revoked")
    with pytest.raises(TaskRevokedError):
        _watched(result, FakeControl()).get()


def test_the_embedded_definitions_run_in_process():
    from nexa_dagster.definitions import defs

    job = defs.resolve_job_def("training_pipeline")
    assert job.executor_def.name == "in_process" and isinstance(job.executor_def, dg.ExecutorDefinition)


def test_the_deploy_queue_is_configuration_and_bad_names_are_one_line():
    from nexa_dagster.deploy_step import deploy_step_tags

    assert deploy_step_tags({}) == {} and deploy_step_tags({"NEXA_DEPLOY_QUEUE": " "}) == {}
    assert deploy_step_tags({"NEXA_DEPLOY_QUEUE": "deploy"}) == {"dagster-celery/queue": "deploy"}
    for bad in ("gpu", "de ploy", "-x"):
        with pytest.raises(NexaError, match=rf"NEXA_DEPLOY_QUEUE={bad!r}: expected a Celery queue name"):
            deploy_step_tags({"NEXA_DEPLOY_QUEUE": bad})


def test_with_a_deploy_queue_only_the_steps_that_touch_the_register_go_there():
    """The code location loaded as a fleet loads it (NEXA_DEPLOY_QUEUE=deploy, in a process of its own, since the
    tags are read at load): promotions and the student evaluation (it re-scores the champion) are routed, nothing
    else is."""
    import json
    import os
    import subprocess
    import sys

    script = ("import json; from nexa_dagster.definitions import defs; "
              "print(json.dumps({k.to_user_string(): defs.resolve_assets_def(k).get_op_def_for_asset_key(k).tags"
              ".get('dagster-celery/queue') for k in defs.resolve_all_asset_keys()}))")
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "NEXA_DEPLOY_QUEUE": "deploy"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    queues = json.loads(out.stdout.strip().splitlines()[-1])
    assert {k for k, q in queues.items() if q == "deploy"} == \
        {"promotion", "student_promotion", "tuned_promotion", "student_evaluation"}, queues
    assert {k for k, q in queues.items() if q == "gpu"} >= {"trained_model", "student_model"}
