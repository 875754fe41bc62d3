"""Tags and the parent run that the caller of a core step knows and the step does not: Dagster's run id, asset key
and partition (set by nexa_dagster around every asset), or the distillation run a student nests under.

A context variable rather than parameters threaded through every step: the core's signatures stay the same for the
CLI, and the values reach the MLflow run the step opens, on this thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PARENT_TAG = "mlflow.parentRunId"
_scope: ContextVar[dict[str, str] | None] = ContextVar("nexa_tracking_scope", default=None)


@contextmanager
def tracking_scope(**tags: str | None) -> Iterator[None]:
    """`with tracking_scope(**{"dagster.run_id": ...}):` adds tags to every MLflow run opened inside."""
    token = _scope.set({**(_scope.get() or {}), **{k: str(v) for k, v in tags.items() if v is not None}})
    try:
        yield
    finally:
        _scope.reset(token)


def scope_tags() -> dict[str, str]:
    return dict(_scope.get() or {})
