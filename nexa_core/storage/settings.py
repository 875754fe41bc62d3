"""The one place durable storage is chosen: `StorageSettings` (where, and how to reach it) and the factories that
turn them into a store (`open_durable`) or an S3 client (`s3_client`, also used to list and fetch data drops).

    settings = StorageSettings.from_env()          # NEXA_S3_PREFIX, NEXA_S3_ENDPOINT_URL / AWS_ENDPOINT_URL, AWS_REGION
    check_reachable(settings)                      # one head_bucket before any work: missing bucket, credentials, endpoint
    store = open_durable(settings, layout)         # S3 under the prefix, else the local mirror <durable>/mirror

Credentials come from boto3's standard chain (environment, shared files and profiles, container/instance roles)
unless explicit ones are given (the Dagster resource's EnvVar fields). Explicit credentials are kept out of
`repr` and out of `public()`, the only form that is ever written (the torchrun launch spec): a worker finds its
own credentials through the chain. Transient request failures (throttling, 5xx, reset connections, timeouts) are
retried by botocore itself (`Config(retries=...)`, adaptive mode: it also slows down after throttling).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nexa_core.common.errors import NexaError
from nexa_core.storage.uri import parse_s3_uri

if TYPE_CHECKING:
    from nexa_core.common.layout import Layout
    from nexa_core.storage.store import DurableStore

_PUBLIC = ("prefix", "endpoint_url", "region", "profile", "prefix_field")


def _env(*names: str) -> str | None:
    return next((os.environ[n].strip() for n in names if os.environ.get(n, "").strip()), None)


@dataclass(frozen=True)
class StorageSettings:
    """Where the durable store is. prefix None: the local mirror folder `<durable>/mirror` (embedded default)."""

    prefix: str | None = None  # s3://bucket[/prefix]
    endpoint_url: str | None = None  # any S3-compatible endpoint; None: AWS (or boto3's own endpoint variables)
    region: str | None = None
    profile: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    prefix_field: str = "NEXA_S3_PREFIX"  # named in errors about the prefix: where the value came from

    def __post_init__(self) -> None:
        prefix = (self.prefix or "").strip() or None
        object.__setattr__(self, "prefix", prefix)
        if prefix is not None:
            parse_s3_uri(prefix, self.prefix_field)  # one line naming the field for anything but s3://bucket[/prefix]
        endpoint = (self.endpoint_url or "").strip() or None
        object.__setattr__(self, "endpoint_url", endpoint)
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise NexaError(f"S3 endpoint {endpoint!r} is not an http(s) URL; set NEXA_S3_ENDPOINT_URL (or the "
                            "storage resource's endpoint_url) to e.g. http://127.0.0.1:9000")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise NexaError("S3 credentials need both an access key id and a secret access key; set both "
                            "(aws_access_key_id and aws_secret_access_key) or neither to use the standard chain")

    @classmethod
    def from_env(cls) -> StorageSettings:
        """NEXA_S3_PREFIX; endpoint from NEXA_S3_ENDPOINT_URL, else AWS_ENDPOINT_URL; AWS_REGION/AWS_DEFAULT_REGION.
        Credentials and AWS_PROFILE are left to boto3's standard chain."""
        return cls(prefix=_env("NEXA_S3_PREFIX"), endpoint_url=_env("NEXA_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
                   region=_env("AWS_REGION", "AWS_DEFAULT_REGION"))

    def merged(self, **overrides: Any) -> StorageSettings:
        """These settings with every override that is set (None and "" keep the current value)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v not in (None, "")})

    def public(self) -> dict:
        """The settings without any secret: safe to write (the torchrun launch spec) and to log."""
        return {name: getattr(self, name) for name in _PUBLIC}

    @classmethod
    def from_public(cls, data: dict | None) -> StorageSettings | None:
        return None if data is None else cls(**{k: data.get(k) for k in _PUBLIC if data.get(k) is not None})


def s3_client(settings: StorageSettings, *, request_attempts: int = 5, max_pool_connections: int = 10,
              connect_timeout: float = 10.0, read_timeout: float = 60.0):
    """A boto3 S3 client for these settings; botocore retries each transient request up to `request_attempts`
    times in all (adaptive mode). Thread-safe: one client serves every transfer thread."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    config = Config(
        # total_max_attempts counts the first try too (max_attempts would count retries only)
        retries={"total_max_attempts": max(1, int(request_attempts)), "mode": "adaptive"},
        max_pool_connections=max_pool_connections, connect_timeout=connect_timeout, read_timeout=read_timeout,
        # S3-compatible servers (and loopback ones) rarely resolve bucket.host names
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
    )
    try:
        # A session of our own: the default session is shared module state and not thread-safe.
        session = boto3.session.Session(
            region_name=settings.region, profile_name=settings.profile, aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key, aws_session_token=settings.session_token)
        return session.client("s3", endpoint_url=settings.endpoint_url, config=config)
    except ProfileNotFound as exc:
        name = settings.profile or os.environ.get("AWS_PROFILE", "")
        raise NexaError(f"AWS profile {name!r} not found ({exc}); set AWS_PROFILE (or the storage resource's "
                        "profile_name) to a configured profile or unset it") from exc
    except BotoCoreError as exc:
        raise NexaError(f"cannot set up an S3 client for {settings.prefix or 'S3'}: {exc}") from exc


def open_durable(settings: StorageSettings, layout: Layout, **kwargs: Any) -> DurableStore:
    """The durable store: S3 under `settings.prefix` (kwargs go to S3Store), else the local mirror folder."""
    if settings.prefix is None:
        from nexa_core.storage.local import LocalStore

        return LocalStore(layout.durable / "mirror")
    from nexa_core.storage.s3 import S3Store

    return S3Store.from_uri(settings.prefix, field=settings.prefix_field, settings=settings, **kwargs)


def check_reachable(settings: StorageSettings) -> None:
    """Refuse durable storage that every later push or pull would fail on (a missing bucket, rejected credentials,
    an endpoint that does not answer) with one request, before a command writes anything. The local mirror needs
    no check: it is created on first use."""
    if settings.prefix is None:
        return
    from nexa_core.storage.s3 import S3Store

    # Few, short attempts: this is a question to a server that should answer at once, not a transfer.
    S3Store.from_uri(settings.prefix, field=settings.prefix_field, settings=settings, request_attempts=2,
                     connect_timeout=5.0, read_timeout=10.0).check_bucket()
