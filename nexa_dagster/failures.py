"""Expected refusals fail a step as their reason, not as a bug.

nexa_core raises NexaError for what the user can fix (bad data, a missed gate, a champion refusal, an unreachable
bucket); its message is one line naming the field and the fix. Left alone, Dagster wraps it in
DagsterExecutionStepExecutionError ("Error occurred while executing op ...") with the NexaError and its stack as
the cause, so the reason sits below two stack traces. As a dg.Failure its line is the step's error message and
the run's failure (`Failure: <line>`), with Dagster's own frames only: nothing from nexa_core, no cause. Retries
are skipped: the same input is refused again. Every other exception keeps its traceback.

Every asset, asset check and op of the code location carries `@refusals_as_failures` (tests/test_failures.py
checks that none is missing).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from nexa_core.common.errors import NexaError

F = TypeVar("F", bound=Callable)


def refusal(reason: str | NexaError) -> dg.Failure:
    return dg.Failure(description=str(reason), allow_retries=False)


def refusals_as_failures(fn: F) -> F:
    """Wrap an asset, check or op body so a NexaError fails the step as `refusal(err)`; Dagster still sees the
    body's own signature (inputs, resources, context) through functools.wraps."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def body(*args, **kwargs):
            try:
                return (yield from fn(*args, **kwargs))
            except NexaError as err:
                raise refusal(err) from None
    else:
        @functools.wraps(fn)
        def body(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except NexaError as err:
                raise refusal(err) from None
    body.refusals_as_failures = True
    return body
