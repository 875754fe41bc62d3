"""`S3Store`: the durable store on S3 (or any S3-compatible endpoint) through boto3.

- The client comes from `settings.s3_client` (StorageSettings: endpoint, region, profile, and explicit
  credentials only when given; otherwise boto3's standard chain). This module never reads, logs or stores
  credentials. With none, the first request fails with one NexaError line.
- One boto3 client (thread-safe) serves every thread. Files go in parallel (`max_files` threads) and
  each large file in parallel parts (`TransferConfig`: multipart above `multipart_threshold`,
  `multipart_chunksize` parts, `max_concurrency` threads per file). The threshold defaults to 64 MiB,
  not boto3's 8 MiB: with files already going in parallel, a mid-sized file is cheaper as one PUT (one
  request instead of create + parts + complete, and no server-side reassembly). In bench/s3_sync.py
  (48 shards of ~10 MB) that took the speed-up over file-by-file boto3 from ~1.2x to ~1.6x.
- Integrity from S3's own checksums: every upload carries `ChecksumAlgorithm=CRC32`, so S3 checks each PUT
  (or part) against the CRC32 the client computed from the file as it read it, refuses a mismatch, and stores
  its own `ChecksumCRC32`. An upload of ours counts once `head_object(ChecksumMode="ENABLED")` reports the
  local size and a server checksum for it. An object already there (a resumed push) is skipped only if S3's
  CRC32 equals this file's: the whole file's for one PUT, for a multipart upload the CRC32 of the parts' CRC32s
  ("-<parts>"), with the part size s3transfer uses. CRC32, not SHA256: it is what boto3 sends by default, and
  a SHA256 per part cost a second hashing pass on the client and on the server (bench/s3_sync.py). A file's
  identity is the sha256 in the completion record, which `pull` checks. Only an object without a server
  checksum (uploaded by an older version, or a store without checksum support) falls back to the sha256 we
  record as user metadata (`x-amz-meta-sha256`).
- Transient failures (SlowDown/throttling, 500/503, dropped or reset connections, timeouts) are retried
  by botocore alone (`retries={"total_max_attempts": request_attempts, "mode": "adaptive"}`: request_attempts
  tries per HTTP request, client-side rate limiting after throttling). After the last one the operation
  fails with a NexaError naming the object, and no completion record is written.
"""

from __future__ import annotations

import base64
import threading
import zlib
from pathlib import Path

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from s3transfer.exceptions import RetriesExceededError
from s3transfer.exceptions import S3UploadFailedError as S3TransferError
from s3transfer.utils import ChunksizeAdjuster

from nexa_core.common.errors import NexaError
from nexa_core.storage.retry import ObjectMissing
from nexa_core.storage.settings import StorageSettings, s3_client
from nexa_core.storage.store import DurableStore, ObjectInfo
from nexa_core.storage.uri import _bucket_problem, _key_problem, parse_s3_uri, validate_key

MiB = 1024 * 1024
_CHECKSUM = {"ChecksumAlgorithm": "CRC32"}
# Failures botocore's standard/adaptive retry handles by itself: when one reaches us, every attempt was made.
_TRANSIENT_ERRORS = (BotoConnectionError, HTTPClientError, RetriesExceededError)
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


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _b64_crc32(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()


class S3Store(DurableStore):
    """Objects under `s3://bucket/prefix/`; see the module docstring for credentials, concurrency, retries."""

    def __init__(self, bucket: str, prefix: str = "", client=None, *, settings: StorageSettings | None = None,
                 endpoint_url: str | None = None, region: str | None = None, max_concurrency: int = 10,
                 max_files: int = 8, multipart_threshold: int = 64 * MiB, multipart_chunksize: int = 8 * MiB,
                 retries: int = 5, request_attempts: int = 5, backoff_base: float = 0.5,
                 backoff_max: float = 20.0, connect_timeout: float = 10.0, read_timeout: float = 60.0):
        problem = _bucket_problem(bucket)
        if problem:
            raise NexaError(f"bucket={bucket!r} is not a valid S3 bucket: {problem}; use e.g. bucket='my-bucket'")
        self.bucket = bucket
        self.prefix = validate_key(prefix, "prefix", allow_empty=True)
        self.max_files = max(1, int(max_files))
        self.retries = max(1, int(retries))  # attempts per object when a transfer does not verify
        self.request_attempts = max(1, int(request_attempts))  # botocore's, per request
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.transfer_config = TransferConfig(multipart_threshold=multipart_threshold,
                                              multipart_chunksize=multipart_chunksize,
                                              max_concurrency=max_concurrency, use_threads=True)
        if client is None:
            settings = (settings or StorageSettings()).merged(endpoint_url=endpoint_url, region=region)
            # every file thread can have max_concurrency part requests in flight
            client = s3_client(settings, request_attempts=self.request_attempts,
                               max_pool_connections=max(10, self.max_files * max_concurrency),
                               connect_timeout=connect_timeout, read_timeout=read_timeout)
        self._sent: dict[tuple[str, str], tuple[int, int]] = {}  # (key, path) -> (size, mtime) we uploaded
        self._sent_lock = threading.Lock()
        self.client = client

    @classmethod
    def from_uri(cls, uri: str, *, field: str = "NEXA_S3_PREFIX", **kwargs) -> S3Store:
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
        stamp = _stamp(path)
        self.client.upload_file(str(path), self.bucket, self._obj(key),
                                ExtraArgs={"Metadata": {"sha256": sha256}, **_CHECKSUM}, Config=self.transfer_config)
        with self._sent_lock:
            self._sent[(key, str(path))] = stamp

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._obj(key), ChecksumMode="ENABLED")
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return ObjectInfo(int(resp["ContentLength"]), (resp.get("Metadata") or {}).get("sha256"),
                          resp.get("ChecksumCRC32"), key=key)

    def _matches(self, info: ObjectInfo | None, path: Path, size: int, sha256: str) -> bool:
        if info is None or info.size != size:
            return False
        if not info.checksum:  # no server checksum: an older upload, or a store without checksum support
            return info.sha256 == sha256
        with self._sent_lock:  # consumed here: it vouches for the check right after our upload, never later
            sent = self._sent.pop((info.key, str(path)), None) if info.key is not None else None
        if sent == _stamp(path):
            return True  # we just uploaded this file and S3 checked every part against the CRC32 sent with it
        # An object already there (resume): compare S3's CRC32 with this file's. A multipart upload's composite
        # ends "-<parts>" on S3 (moto leaves it out).
        return info.checksum.partition("-")[0] == self._crc32(path, size)

    def _part_size(self, size: int) -> int:
        # s3transfer's part size for this file: our chunksize, raised only to stay within 10,000 parts.
        return ChunksizeAdjuster().adjust_chunksize(self.transfer_config.multipart_chunksize, size)

    def _crc32(self, path: Path, size: int) -> str:
        """The CRC32 S3 reports for `path` (base64): the whole file's for one PUT; for a multipart upload, the
        CRC32 of the parts' CRC32s. Each byte is read once."""
        multipart = size >= self.transfer_config.multipart_threshold
        whole, parts = 0, []
        with open(path, "rb") as f:
            while chunk := f.read(self._part_size(size)):
                if multipart:
                    parts.append(zlib.crc32(chunk).to_bytes(4, "big"))
                else:
                    whole = zlib.crc32(chunk, whole)
        return _b64_crc32(zlib.crc32(b"".join(parts)) if multipart else whole)

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

    def check_bucket(self) -> None:
        """One `head_bucket`: the bucket exists and these credentials may use it, or one NexaError line."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status = _code(exc)
            if code in ("NoSuchBucket", *_MISSING_CODES) or status == 404:  # HEAD answers have no body: code "404"
                raise NexaError(f"bucket {self.bucket!r} does not exist (for {self.describe()}); create it or fix "
                                "NEXA_S3_PREFIX") from None
            raise self._translate(exc, "") or NexaError(
                f"S3 refused {self.describe()} ({code or status}); check NEXA_S3_PREFIX and the credentials") from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise self._translate(exc, "") from None
        except BotoCoreError as exc:  # endpoint unreachable, timeouts: botocore has already retried
            raise NexaError(f"cannot reach S3 for {self.describe()} ({exc}); check NEXA_S3_ENDPOINT_URL (or "
                            "AWS_ENDPOINT_URL) and the network") from None

    # ------------------------------------------------------------------------------------ errors

    def _attempts(self, exc: BaseException) -> int:
        for cur in _chain(exc):
            if isinstance(cur, ClientError):
                retried = (cur.response.get("ResponseMetadata", {}) or {}).get("RetryAttempts") or 0
                return int(retried) + 1
            if isinstance(cur, _TRANSIENT_ERRORS):
                return self.request_attempts
        return 1

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

