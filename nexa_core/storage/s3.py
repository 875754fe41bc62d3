"""`S3Store`: the durable store on S3 (or any S3-compatible endpoint) through boto3.

- Credentials come from boto3's default chain only (environment, shared config/credentials files and
  profiles, container/instance roles); this module never reads, logs or stores them. With none, the first
  request fails with one NexaError line.
- One boto3 client (thread-safe) serves every thread. Files go in parallel (`max_files` threads) and
  each large file in parallel parts (`TransferConfig`: multipart above `multipart_threshold`,
  `multipart_chunksize` parts, `max_concurrency` threads per file). The threshold defaults to 64 MiB,
  not boto3's 8 MiB: with files already going in parallel, a mid-sized file is cheaper as one PUT (one
  request instead of create + parts + complete, and no server-side reassembly). In bench/s3_sync.py
  (48 shards of ~10 MB) that took the speed-up over file-by-file boto3 from ~1.2x to ~1.6x.
- Every object carries its sha256 as user metadata (`x-amz-meta-sha256`), set at upload. An upload
  counts once a HEAD reports the local size and sha256; the completion record (a plain put_object, last)
  lists them all, and `pull` hashes the downloaded bytes against it, so an object replaced or corrupted
  on the server is caught even when its metadata was kept.
- Transient failures (SlowDown/throttling, 500/503, dropped or reset connections, timeouts) are retried
  by botocore (`retries={"total_max_attempts": request_attempts, "mode": "adaptive"}`: request_attempts
  tries per HTTP request, client-side rate limiting after throttling) and then by an outer
  per-object loop (`retries` attempts, exponential backoff with full jitter). After the last attempt the
  operation fails with a NexaError naming the object, and no completion record is written.
- The endpoint may also come from boto3's own `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` variables.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)
from s3transfer.exceptions import RetriesExceededError
from s3transfer.exceptions import S3UploadFailedError as S3TransferError
from urllib3.exceptions import ProtocolError

from nexa_core.common.errors import NexaError
from nexa_core.storage.retry import ObjectMissing
from nexa_core.storage.store import DurableStore, ObjectInfo
from nexa_core.storage.uri import _bucket_problem, _key_problem, parse_s3_uri, validate_key

MiB = 1024 * 1024
_RETRY_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "ProvisionedThroughputExceededException",
    "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "BadDigest",
    "IncompleteBody", "XAmzContentSHA256Mismatch", "500", "502", "503", "504",
})
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_NETWORK_ERRORS = (
    EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError, HTTPClientError,
    IncompleteReadError, ResponseStreamingError, ProtocolError, ConnectionError, TimeoutError,
)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                               "TokenRefreshRequired", "AuthorizationHeaderMalformed"})


def _chain(exc: BaseException):
    """The exception and those behind it (cause, context, s3transfer's last_exception), each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        todo.extend([cur.__cause__, cur.__context__, getattr(cur, "last_exception", None)])


def _code(exc: ClientError) -> tuple[str, int | None]:
    err = exc.response.get("Error", {}) or {}
    status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
    return str(err.get("Code", "")), status


def _is_missing(exc: ClientError) -> bool:
    code, status = _code(exc)
    return code in _MISSING_CODES or status == 404


class S3Store(DurableStore):
    """Objects under `s3://bucket/prefix/`; see the module docstring for credentials, concurrency, retries."""

    def __init__(self, bucket: str, prefix: str = "", client=None, *, endpoint_url: str | None = None,
                 region: str | None = None, max_concurrency: int = 10, max_files: int = 8,
                 multipart_threshold: int = 64 * MiB, multipart_chunksize: int = 8 * MiB,
                 retries: int = 5, request_attempts: int = 5, backoff_base: float = 0.5,
                 backoff_max: float = 20.0, connect_timeout: float = 10.0, read_timeout: float = 60.0):
        problem = _bucket_problem(bucket)
        if problem:
            raise NexaError(f"bucket={bucket!r} is not a valid S3 bucket: {problem}; use e.g. bucket='my-bucket'")
        self.bucket = bucket
        self.prefix = validate_key(prefix, "prefix", allow_empty=True)
        self.max_files = max(1, int(max_files))
        self.retries = max(1, int(retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.transfer_config = TransferConfig(multipart_threshold=multipart_threshold,
                                              multipart_chunksize=multipart_chunksize,
                                              max_concurrency=max_concurrency, use_threads=True)
        if client is None:
            config = Config(
                # total_max_attempts counts the first try too (max_attempts would count retries only)
                retries={"total_max_attempts": max(1, int(request_attempts)), "mode": "adaptive"},
                # every file thread can have max_concurrency part requests in flight
                max_pool_connections=max(10, self.max_files * max_concurrency),
                connect_timeout=connect_timeout, read_timeout=read_timeout,
                s3={"addressing_style": "path"} if endpoint_url else None,
            )
            try:
                # A session of our own: the default session is shared module state and not thread-safe.
                session = boto3.session.Session(region_name=region)
                client = session.client("s3", endpoint_url=endpoint_url, config=config)
            except ProfileNotFound as exc:
                raise NexaError(f"AWS profile {os.environ.get('AWS_PROFILE', '')!r} not found ({exc}); "
                                "set AWS_PROFILE to a configured profile or unset it") from exc
            except BotoCoreError as exc:
                raise NexaError(f"cannot set up an S3 client for {self.describe()}: {exc}") from exc
        self.client = client

    @classmethod
    def from_uri(cls, uri: str, *, field: str = "NEXA_S3_PREFIX", **kwargs) -> "S3Store":
        """`S3Store.from_uri("s3://bucket/prefix")`; a bad URI is a one-line NexaError naming `field`."""
        bucket, prefix = parse_s3_uri(uri, field)
        return cls(bucket, prefix, **kwargs)

    def __repr__(self) -> str:
        return f"S3Store({self.describe()!r})"

    # ------------------------------------------------------------------------------------ primitives

    def _obj(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix and key else (self.prefix or key)

    def describe(self, key: str = "") -> str:
        obj = self._obj(key)
        return f"s3://{self.bucket}/{obj}" if obj else f"s3://{self.bucket}"

    def _put_file(self, path: Path, key: str, sha256: str) -> None:
        self.client.upload_file(str(path), self.bucket, self._obj(key),
                                ExtraArgs={"Metadata": {"sha256": sha256}}, Config=self.transfer_config)

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._obj(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return ObjectInfo(int(resp["ContentLength"]), (resp.get("Metadata") or {}).get("sha256"))

    def _get_file(self, key: str, dest: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._obj(key), str(dest), Config=self.transfer_config)
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(key) from exc
            raise

    def _put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._obj(key), Body=data, ContentType="application/json")

    def _get_bytes(self, key: str) -> bytes | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._obj(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        with resp["Body"] as body:
            return body.read()

    def _list(self, prefix: str) -> dict[str, int]:
        obj = self._obj(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=obj):
            for item in page.get("Contents", []) or []:
                full = item["Key"]
                if obj and not (full == obj or full.startswith(obj + "/")):
                    continue  # "runs/a" must not match "runs/ab"
                key = full[strip:]
                if key and _key_problem(key) is None:  # skip foreign oddities like `a//b` or `a/`
                    found[key] = int(item["Size"])
        return found

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            resp = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": self._obj(k)} for k in batch], "Quiet": True})
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                raise ClientError({"Error": {"Code": first.get("Code", "DeleteFailed"),
                                             "Message": f"{first.get('Key')}: {first.get('Message', '')}"}},
                                  "DeleteObjects")

    # ------------------------------------------------------------------------------------ errors

    def _is_retryable(self, exc: BaseException) -> bool:
        for cur in _chain(exc):
            if isinstance(cur, ClientError):
                code, status = _code(cur)
                if code in _RETRY_CODES or status in _RETRY_STATUS:
                    return True
            elif isinstance(cur, (_NETWORK_ERRORS, RetriesExceededError)):
                return True
        return False

    def _is_store_error(self, exc: BaseException) -> bool:
        return isinstance(exc, (OSError, BotoCoreError, ClientError, Boto3Error, S3TransferError,
                                RetriesExceededError))

    def _translate(self, exc: BaseException, key: str) -> NexaError | None:
        for cur in _chain(exc):
            if isinstance(cur, (NoCredentialsError, PartialCredentialsError)):
                return NexaError(f"no AWS credentials found for {self.describe()}; set "
                                 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile (AWS_PROFILE), "
                                 "or run where an instance/container role is available")
            if isinstance(cur, ClientError):
                code, status = _code(cur)
                if code == "NoSuchBucket":
                    return NexaError(f"bucket {self.bucket!r} does not exist (for {self.describe(key)}); "
                                     "create it or fix NEXA_S3_PREFIX")
                if code in _CREDENTIAL_CODES:
                    return NexaError(f"S3 rejected the AWS credentials for {self.describe(key)} ({code}); "
                                     "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile")
                if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
                    return NexaError(f"access denied to {self.describe(key)} ({code or status}); grant this "
                                     "identity s3:GetObject/PutObject/ListBucket/DeleteObject on the bucket and prefix")
        return None

