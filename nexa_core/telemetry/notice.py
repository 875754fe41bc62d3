"""One log line per process for the 'no GPU' fallback: a sampler every few seconds must not repeat it."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("nexa_core.telemetry")
_said: set[str] = set()
_lock = threading.Lock()


def say_once(message: str) -> bool:
    """Log `message` the first time it is seen in this process; True if it was logged now."""
    with _lock:
        if message in _said:
            return False
        _said.add(message)
    log.warning(message)
    return True


def reset() -> None:
    """Forget what was said (tests)."""
    with _lock:
        _said.clear()
