"""dagster-celery's executor, plus what it lacks: noticing that the worker running a step has died.

Stock dagster-celery waits for a step's result for ever: a worker killed mid-step (a lost node, a preempted GPU
instance) leaves the run "started" until someone cancels it. Here each running step is watched: the worker that
took it is known from its STARTED report (`task_track_started`), and the executor pings that worker every
`worker_check_seconds`; after `worker_check_misses` unanswered pings in a row the step fails with the reason
("celery worker gpu-1@node7 stopped answering while it ran step trained_model ..."). A task that failed inside a
live worker (its pool process OOM-killed: Celery's WorkerLostError) also becomes the step's failure with that
reason, where stock dagster-celery would abort the whole loop and leave the step without an end. Either way the
failure goes through Dagster's retry decision (a step with a retry policy is retried), the step's downstream steps
are skipped, so nothing after it is published, and its pool slot is freed. Tasks are acknowledged on receipt
(Celery's default), so a dead worker's step is not run again later behind the run's back.

Everything else (queues from the `dagster-celery/queue` tag, priorities, the pool limits) is dagster-celery's own
loop (`core_celery_execution_loop`), unchanged.
"""

from __future__ import annotations

import time

import dagster as dg
from celery import states
from celery.exceptions import TaskRevokedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._serdes import serialize_value
from dagster._utils.error import SerializableErrorInfo
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

from nexa_dagster.execution.celery_settings import CelerySettings

EXECUTOR_CONFIG = {
    **{k: v for k, v in CELERY_CONFIG.items() if k not in ("backend", "retries")},
    # No default here: an unset backend comes from NEXA_CELERY_BACKEND (as the broker from NEXA_CELERY_BROKER).
    "backend": dg.Field(dg.Noneable(dg.StringSource), is_required=False),
    "retries": get_retries_config(),
    "worker_check_seconds": dg.Field(float, default_value=5.0,
                                     description="How often the worker running a step is pinged."),
    "worker_check_misses": dg.Field(int, default_value=3,
                                    description="Unanswered pings in a row after which the step fails as lost."),
}


PING_TIMEOUT_S = 2.0  # a busy node's worker process still answers within this; a dead one never does


class WorkerLost(Exception):
    """The Celery worker that was running a step stopped answering."""


class WatchedResult:
    """A step's Celery result, as the executor loop uses it (`ready`, `get`, `revoke`), that also becomes ready
    when the worker running the step is lost; `get` then returns the step's failure (or retry) events, built by
    `failure(reason, error class name)`, for a lost worker or a task that failed in its worker."""

    def __init__(self, result, app, failure, check_seconds: float, misses: int):
        self._result, self._app, self._failure = result, app, failure
        self._check_seconds, self._misses_allowed = check_seconds, misses
        self._next_check, self._misses, self._lost_worker = 0.0, 0, None

    def ready(self) -> bool:
        if self._lost_worker is not None or self._result.ready():
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self._check_seconds
        worker = self._worker()
        if worker is None:  # still queued: waiting for a free worker is not a failure
            return False
        answered = self._app.control.ping(destination=[worker], timeout=PING_TIMEOUT_S)
        self._misses = 0 if answered else self._misses + 1
        if self._misses >= self._misses_allowed:
            self._lost_worker = worker
        return self._lost_worker is not None

    def _worker(self) -> str | None:
        if self._result.state != states.STARTED:
            return None
        info = self._result.info
        return info.get("hostname") if isinstance(info, dict) else None

    def get(self):
        if self._lost_worker is not None:
            return self._failure(
                f"celery worker {self._lost_worker} stopped answering while it ran the step (no reply to "
                f"{self._misses_allowed} pings {self._check_seconds:g} s apart): the worker or its node died",
                WorkerLost.__name__)
        try:
            return self._result.get()
        except TaskRevokedError:
            raise  # the loop's own case: a run being stopped revokes its steps
        except Exception as exc:  # noqa: BLE001 - a step's own errors are events; this is the task's infrastructure
            return self._failure(f"its celery task failed in the worker: {type(exc).__name__}: {exc}",
                                 type(exc).__name__)

    def revoke(self) -> None:
        self._result.revoke()


class WatchedCeleryExecutor(CeleryExecutor):
    def __init__(self, *, check_seconds: float, misses: int, **kwargs):
        super().__init__(**kwargs)
        self.check_seconds, self.misses = check_seconds, misses

    def execute(self, plan_context, execution_plan):
        from dagster_celery.core_execution_loop import core_celery_execution_loop

        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=self._submit)

    def _submit(self, app, plan_context, step, queue, priority, known_state) -> WatchedResult:
        result = _submit_task(app, plan_context, step, queue, priority, known_state)

        def failure(why: str, error_class: str) -> list:
            reason = (f"step {step.key} (queue {queue!r}) did not finish: {why.rstrip('.')}. Nothing downstream of it ran; re-run "
                      "the job once a worker serves the queue (training resumes from its last checkpoint).")
            error = SerializableErrorInfo(reason, [], error_class)
            step_context = plan_context.for_step(step)
            result.revoke()  # if the worker comes back with the step still reserved, it must not run it again
            return [serialize_value(event) for event in (
                DagsterEvent.engine_event(step_context, reason, EngineEventData.engine_error(error)),
                self.log_failure_or_retry_event_after_error(step_context, error, known_state))]

        return WatchedResult(result, app, failure, self.check_seconds, self.misses)


@dg.executor(name="celery", config_schema=EXECUTOR_CONFIG, requirements=dg.multiple_process_executor_requirements())
def watched_celery_executor(init_context) -> WatchedCeleryExecutor:
    """Steps on Celery workers (dagster-celery), with lost workers noticed. Broker and backend come from
    NEXA_CELERY_BROKER / NEXA_CELERY_BACKEND unless the run config names them."""
    config = init_context.executor_config
    settings = CelerySettings.from_env()
    app_args = settings.app_args(config.get("config_source"))
    return WatchedCeleryExecutor(
        broker=config.get("broker") or settings.broker, backend=config.get("backend") or settings.backend,
        include=config.get("include"), config_source=dict(vars(app_args["config_source"])),
        retries=RetryMode.from_config(config["retries"]), check_seconds=config["worker_check_seconds"],
        misses=config["worker_check_misses"])
