"""S3 locations (`s3://bucket[/prefix]`) and store keys, checked before they reach a request or a path."""

from __future__ import annotations

import re

from nexa_core.common.errors import NexaError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_EXAMPLE = "s3://my-bucket/nexa"


def _bucket_problem(bucket: str) -> str | None:
    """Why `bucket` is not a valid S3 bucket name (general purpose bucket rules), or None."""
    if not bucket:
        return "the bucket name is empty"
    if not 3 <= len(bucket) <= 63:
        return f"bucket name {bucket!r} must be 3-63 characters"
    if not _BUCKET_RE.fullmatch(bucket):
        return (f"bucket name {bucket!r} may hold only lowercase letters, digits, dots and hyphens, "
                "and must start and end with a letter or digit")
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return f"bucket name {bucket!r} has adjacent dots or a dot next to a hyphen"
    if _IPV4_RE.fullmatch(bucket):
        return f"bucket name {bucket!r} looks like an IP address"
    return None


def _key_problem(key: str) -> str | None:
    """Why `key` is not a safe relative key (`a/b/c`), or None."""
    if "\\" in key:
        return "backslashes are not allowed"
    if any(ch in key for ch in "\x00\n\r"):
        return "control characters are not allowed"
    if key.startswith("/"):
        return "it must not start with '/'"
    parts = key.split("/")
    if any(part == ".." for part in parts):
        return "'..' components are not allowed"
    if any(part in ("", ".") for part in parts):
        return "empty or '.' components are not allowed"
    return None


def parse_s3_uri(uri: str, field: str = "NEXA_S3_PREFIX") -> tuple[str, str]:
    """`s3://bucket` -> ("bucket", ""), `s3://bucket/some/prefix/` -> ("bucket", "some/prefix").

    Anything else is a one-line NexaError naming `field`, the value and an example.
    """

    def bad(why: str) -> NexaError:
        return NexaError(f"{field}={uri!r} is not a valid S3 location: {why}; use e.g. {field}={_EXAMPLE}")

    if not isinstance(uri, str) or not uri.strip():
        raise bad("it is empty")
    if "://" not in uri:
        raise bad("it has no s3:// scheme")
    scheme, rest = uri.split("://", 1)
    if scheme != "s3":
        raise bad(f"the scheme is {scheme!r}, not 's3'")
    bucket, _, prefix = rest.partition("/")
    problem = _bucket_problem(bucket)
    if problem:
        raise bad(problem)
    prefix = prefix.rstrip("/")
    if prefix:
        problem = _key_problem(prefix)
        if problem:
            raise bad(f"prefix {prefix!r}: {problem}")
    return bucket, prefix


def validate_key(key: str, field: str = "key", *, allow_empty: bool = False) -> str:
    """Return `key` (a trailing '/' removed) if it is a safe relative store key, else a one-line NexaError."""
    if not isinstance(key, str):
        raise NexaError(f"{field} must be a string like 'runs/my-run_20260101_000000', got {type(key).__name__}")
    key = key.rstrip("/") if key != "/" else key
    if not key:
        if allow_empty:
            return ""
        raise NexaError(f"{field} is empty; use a relative key like 'runs/my-run_20260101_000000'")
    problem = _key_problem(key)
    if problem:
        raise NexaError(f"{field} {key!r} is not a valid store key: {problem}; "
                        "use a relative key like 'runs/my-run_20260101_000000'")
    return key
