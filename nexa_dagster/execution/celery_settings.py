"""The Celery app settings shared by the executor (which submits steps) and the workers (which run them), read from
the environment so both sides agree without a config file that would hold the broker's password.

    NEXA_CELERY_BROKER    amqp://guest:guest@127.0.0.1:5672//  (RabbitMQ; redis://host:6379/0 works too)
    NEXA_CELERY_BACKEND   rpc://  (results back over the broker; with Redis as broker use redis://.../1)

Queues: a step tagged `dagster-celery/queue: gpu` (every step in pool `gpu`) goes to queue `gpu`, which only GPU
nodes consume; every other step goes to `dagster` (dagster-celery's default queue)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from nexa_core.common.errors import NexaError

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_QUEUE = "dagster"
GPU_QUEUE = "gpu"
_SCHEMES = ("amqp", "pyamqp", "amqps", "redis", "rediss")

# Settings both sides need. task_track_started: a worker reports STARTED with its name as it takes a step, which is
# how the executor knows whose death to watch for (nexa_dagster/execution/watched.py).
# prefetch 1: a GPU node takes the next step only when it has a free slot, instead of hoarding queued steps.
# worker_redirect_stdouts off: Celery's stand-in for stdout/stderr has no file descriptor, so Dagster's capture of a
# step's output (what the compute log manager uploads to S3) would find nothing to capture.
CONFIG_SOURCE = {
    "task_track_started": True,
    "worker_prefetch_multiplier": 1,
    "worker_redirect_stdouts": False,
    "broker_connection_retry_on_startup": True,
}


@dataclass(frozen=True)
class CelerySettings:
    broker: str = field(repr=False)  # may hold a password: never logged; `public_broker` is the loggable form
    backend: str = "rpc://"

    @classmethod
    def from_env(cls) -> CelerySettings:
        broker = os.environ.get("NEXA_CELERY_BROKER", "").strip() or DEFAULT_BROKER
        backend = os.environ.get("NEXA_CELERY_BACKEND", "").strip() or "rpc://"
        scheme = urlsplit(broker).scheme
        if scheme not in _SCHEMES:
            raise NexaError(f"NEXA_CELERY_BROKER has scheme {scheme!r}, not a broker URL; set it to e.g. "
                            f"{DEFAULT_BROKER} (RabbitMQ) or redis://127.0.0.1:6379/0")
        return cls(broker=broker, backend=backend)

    @property
    def public_broker(self) -> str:
        """The broker URL without its password (safe to print)."""
        parts = urlsplit(self.broker)
        if parts.password is None:
            return self.broker
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    def app_args(self, extra: dict | None = None) -> dict:
        """Arguments for dagster-celery's `make_app` (the same on both sides)."""
        from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper

        return {"broker": self.broker, "backend": self.backend, "include": [],
                "config_source": dict_wrapper({**DEFAULT_CONFIG, **CONFIG_SOURCE, **(extra or {})})}
