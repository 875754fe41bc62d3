"""Failures and parallel transfers for a store: one-line errors naming the object, a retry when a transfer does
not verify (size or checksum), and a thread pool that stops starting new transfers after the first failure.

Transient request failures are not retried here: the S3 client's botocore layer retries them (see settings.py),
so a request failure that reaches this module is final."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from nexa_core.common.errors import NexaError

log = logging.getLogger("nexa_core.storage")
T = TypeVar("T")


class ObjectMissing(Exception):
    """Raised by a store primitive when the object is not there (turned into a NexaError by the caller)."""


class _Mismatch(Exception):
    """A transfer whose result does not verify (size, checksum): retried, then a NexaError with this message."""


class _Aborted(Exception):
    """Another file of the same operation failed: stop this one quietly."""


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class Retrying:
    """Mixed into DurableStore: subclasses classify their exceptions; `describe` names an object in messages."""

    max_files: int = 4  # files transferred at once
    retries: int = 3  # attempts per object when its transfer does not verify
    backoff_base: float = 0.5
    backoff_max: float = 20.0

    def _attempts(self, exc: BaseException) -> int:
        """How many tries the client made before giving up on this failure (1: it was not retried)."""
        return 1

    def _is_store_error(self, exc: BaseException) -> bool:
        """Failures of the store or the disk (reported as a NexaError); anything else is a bug and propagates."""
        return isinstance(exc, OSError)

    def _translate(self, exc: BaseException, key: str) -> NexaError | None:
        return None

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff: uniform(0, min(max, base * 2**(attempt-1)))."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))

    def _retrying(self, what: str, key: str, fn: Callable[[], T], abort: threading.Event | None = None) -> T:
        """Run `fn` once (the client has retried transient requests); a failure is a NexaError naming the object."""
        if abort is not None and abort.is_set():
            raise _Aborted()
        try:
            return fn()
        except (NexaError, ObjectMissing, _Aborted, _Mismatch):
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised as a NexaError
            user = self._translate(exc, key)
            if user is not None:
                raise user from exc
            if not self._is_store_error(exc):
                raise
            attempts = self._attempts(exc)
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            hint = "check the connection and re-run the sync (verified files are skipped)" if attempts > 1 \
                else "fix the cause and re-run the sync"
            raise NexaError(f"{what} {self.describe(key)} failed{tries}: {_brief(exc)}; {hint}") from exc

    def _verified(self, what: str, key: str, fn: Callable[[], T], abort: threading.Event | None = None) -> T:
        """Run `fn` (a transfer and its check) again while the check fails, `retries` times in all; then the
        mismatch is a NexaError."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._retrying(what, key, fn, abort)
            except _Mismatch as exc:
                if attempt >= self.retries:
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise NexaError(f"{exc}{tries}") from None
                delay = self._backoff(attempt)
                log.warning("%s %s did not verify: %s; retrying in %.2fs (attempt %d of %d)",
                            what, self.describe(key), exc, delay, attempt + 1, self.retries)
                time.sleep(delay)

    def _run_parallel(self, jobs: list[Callable[[threading.Event], T]]) -> list[T]:
        """Run jobs on `max_files` threads; on the first failure stop starting new ones and raise it."""
        if not jobs:
            return []
        abort = threading.Event()
        pool = cf.ThreadPoolExecutor(max_workers=max(1, min(self.max_files, len(jobs))),
                                     thread_name_prefix="nexa-sync")
        futures = [pool.submit(job, abort) for job in jobs]
        try:
            done, _ = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
            first = next((f for f in futures if f in done and not f.cancelled() and f.exception()
                          and not isinstance(f.exception(), _Aborted)), None)
            if first is not None:
                abort.set()
                for f in futures:
                    f.cancel()
                cf.wait(futures)
                raise first.exception()
            return [f.result() for f in futures]
        except BaseException:
            abort.set()
            for f in futures:
                f.cancel()
            raise
        finally:
            pool.shutdown(wait=True)
