"""S3Store against a real moto_server on a free loopback port (boto3 is never mocked).

The server (and the reset proxy of tests/reset_proxy.py) run as subprocesses in their own process
groups, killed in fixture teardown. AWS credentials are dummies set per test through monkeypatch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from nexa_core.common.errors import NexaError
from nexa_core.storage import COMPLETE_NAME, parse_s3_uri
from nexa_core.storage.s3 import S3Store
from tests.storage_helpers import read_tree, write_tree

pytestmark = pytest.mark.slow

BUCKET = "nexa-test"
MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


# --------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """Kill the process group we started (the server and anything it forked), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)


def admin_client(endpoint: str):
    """Direct access to the server, explicit dummy credentials (no environment needed)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    return session.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


def _start_moto(log_path: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if not exe:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    for _ in range(3):  # a free port can be taken between picking and binding: try another
        port = free_port()
        log = open(log_path, "ab")
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **DUMMY_ENV}, start_new_session=True)
        log.close()
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                admin_client(endpoint).list_buckets()
                return proc, endpoint
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        stop_group(proc)
    raise RuntimeError(f"moto_server did not start; see {log_path}")


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    proc, endpoint = _start_moto(tmp_path_factory.mktemp("moto") / "moto_server.log")
    try:
        admin_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_group(proc)


class Proxy:
    def __init__(self, proc: subprocess.Popen, log: Path, endpoint: str):
        self.proc, self.log, self.endpoint = proc, log, endpoint

    def resets(self) -> int:
        return sum(line.startswith("reset ") for line in self.log.read_text().splitlines())


@pytest.fixture
def start_proxy(moto, tmp_path):
    started: list[subprocess.Popen] = []

    def start(resets: int, after_bytes: int) -> Proxy:
        log = tmp_path / f"proxy-{len(started)}.log"
        upstream = int(moto.rsplit(":", 1)[1])
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "reset_proxy.py"), "--upstream-port", str(upstream),
                 "--resets", str(resets), "--after-bytes", str(after_bytes)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            lines = log.read_text().splitlines()
            if lines and lines[0].startswith("listening "):
                return Proxy(proc, log, "http://" + lines[0].split()[1])
            time.sleep(0.05)
        raise RuntimeError(f"reset proxy did not start: {log.read_text()}")

    yield start
    for proc in started:
        stop_group(proc)


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials for this test only; no profile files, no instance metadata lookups."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def prefix(moto):
    """A fresh prefix per test; its objects are deleted afterwards (moto keeps them in memory)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    client = admin_client(moto)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=name + "/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def store_for(endpoint: str, prefix: str, **kwargs) -> S3Store:
    kwargs.setdefault("backoff_base", 0.05)
    kwargs.setdefault("multipart_threshold", 8 * MiB)  # the default is 64 MiB: exercise multipart on small files
    return S3Store.from_uri(f"s3://{BUCKET}/{prefix}", endpoint_url=endpoint, region="us-east-1", **kwargs)


def make_tree(root: Path, big_mb: float = 0) -> dict[str, bytes]:
    files = {
        "config.json": b'{"lr": 0.001}\n',
        "checkpoint-10/optimizer.pt": os.urandom(600_000),
        "checkpoint-10/rng_state.pth": os.urandom(14_000),
        "checkpoint-10/deep/er/trainer_state.json": b'{"step": 10}',
        "logs/train_log.jsonl": b'{"loss": 0.5}\n' * 500,
        "empty.txt": b"",
    }
    if big_mb:
        files["model.safetensors"] = os.urandom(int(big_mb * MiB))
    return write_tree(root, files)


# --------------------------------------------------------------------------------------------- tests


def test_round_trip_with_multipart(moto, prefix, aws_env, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src, big_mb=20)
    store = store_for(moto, prefix)
    result = store.push(src, "runs/r1")
    assert result["stats"]["uploaded"] == len(files) and result["stats"]["skipped"] == 0
    assert result["uri"] == f"s3://{BUCKET}/{prefix}/runs/r1"

    client = admin_client(moto)
    head = client.head_object(Bucket=BUCKET, Key=f"{prefix}/runs/r1/model.safetensors")
    assert head["Metadata"]["sha256"] == hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert head["ETag"].strip('"').endswith("-3")  # 20 MiB in 8 MiB parts: the multipart path
    assert store.is_complete("runs/r1") and store.complete_keys() == ["runs/r1"]

    out = tmp_path / "out" / "r1"
    pulled = store.pull("runs/r1", out)
    assert read_tree(out) == files
    assert pulled["stats"]["downloaded"] == len(files)
    assert sorted(p.name for p in out.parent.iterdir()) == ["r1"]

    assert store.delete_prefix("runs/r1") == len(files) + 1
    assert store.list_keys() == [] and not store.is_complete("runs/r1")


def test_resume_uploads_only_missing_and_changed(moto, prefix, aws_env, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    store = store_for(moto, prefix)
    store.push(src, "runs/r1")
    admin_client(moto).delete_object(Bucket=BUCKET, Key=f"{prefix}/runs/r1/checkpoint-10/optimizer.pt")
    (src / "config.json").write_bytes(b'{"lr": 0.002}\n')
    again = store.push(src, "runs/r1")
    assert again["stats"]["uploaded"] == 2 and again["stats"]["skipped"] == len(files) - 2
    assert again["uploaded"] == ["checkpoint-10/optimizer.pt", "config.json"]
    out = tmp_path / "out"
    store.pull("runs/r1", out)
    assert read_tree(out) == read_tree(src)


def test_corrupted_object_is_caught_and_nothing_left(moto, prefix, aws_env, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    store = store_for(moto, prefix)
    store.push(src, "runs/r1")
    client = admin_client(moto)
    key = f"{prefix}/runs/r1/checkpoint-10/optimizer.pt"
    meta = client.head_object(Bucket=BUCKET, Key=key)["Metadata"]
    client.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(600_000), Metadata=meta)  # metadata kept
    out = tmp_path / "out" / "r1"
    with pytest.raises(NexaError) as err:
        store.pull("runs/r1", out)
    message = str(err.value)
    assert f"s3://{BUCKET}/{key} does not match its completion record" in message and "\n" not in message
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_pull_refuses_without_completion_record(moto, prefix, aws_env, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    store = store_for(moto, prefix)
    store.push(src, "runs/r1")
    admin_client(moto).delete_object(Bucket=BUCKET, Key=f"{prefix}/runs/r1/{COMPLETE_NAME}")
    assert not store.is_complete("runs/r1")
    with pytest.raises(NexaError, match=rf"incomplete upload at s3://{BUCKET}/{prefix}/runs/r1 .*re-run the sync"):
        store.pull("runs/r1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_single_file_round_trip(moto, prefix, aws_env, tmp_path):
    pkg = tmp_path / "r1.tar.gz"
    pkg.write_bytes(os.urandom(9 * MiB))  # just over the multipart threshold
    store = store_for(moto, prefix)
    assert store.push_file(pkg, "packages/r1.tar.gz")["stats"]["uploaded"] == 1
    assert store.push_file(pkg, "packages/r1.tar.gz")["stats"]["skipped"] == 1
    assert store.list_keys("packages") == ["packages/r1.tar.gz", "packages/r1.tar.gz.complete.json"]
    out = tmp_path / "got" / "r1.tar.gz"
    store.pull_file("packages/r1.tar.gz", out)
    assert out.read_bytes() == pkg.read_bytes()


def test_push_survives_reset_connections(moto, prefix, aws_env, tmp_path, start_proxy, caplog):
    """botocore retries the reset requests itself: the one retry layer for transient request failures."""
    caplog.set_level(logging.WARNING, logger="nexa_core.storage")
    proxy = start_proxy(resets=3, after_bytes=200_000)
    src = tmp_path / "src"
    files = make_tree(src, big_mb=9)
    store = store_for(proxy.endpoint, prefix, max_files=2, max_concurrency=2, request_attempts=5)
    result = store.push(src, "runs/r1")
    assert proxy.resets() == 3
    assert result["stats"]["uploaded"] == len(files)
    assert not [r for r in caplog.records if "retrying in" in r.getMessage()]  # no second layer of our own
    out = tmp_path / "out"
    store_for(moto, prefix).pull("runs/r1", out)  # read back directly from the server: bytes verified
    assert read_tree(out) == files


def test_push_fails_loudly_when_every_connection_resets(moto, prefix, aws_env, tmp_path, start_proxy):
    proxy = start_proxy(resets=-1, after_bytes=64_000)
    src = tmp_path / "src"
    make_tree(src)
    store = store_for(proxy.endpoint, prefix, retries=2, request_attempts=2, backoff_base=0.01, max_files=2)
    started = time.monotonic()
    with pytest.raises(NexaError) as err:
        store.push(src, "runs/r1")
    message = str(err.value)
    assert f"upload of s3://{BUCKET}/{prefix}/runs/r1/checkpoint-10/optimizer.pt failed after 2 attempts" in message
    assert "\n" not in message and time.monotonic() - started < 30
    assert proxy.resets() >= 2
    direct = store_for(moto, prefix)
    assert not direct.is_complete("runs/r1")
    assert f"runs/r1/{COMPLETE_NAME}" not in direct.list_keys()
    # the small files went through before the failure: re-running the sync skips them
    again = direct.push(src, "runs/r1")
    assert again["stats"]["skipped"] >= 1 and "checkpoint-10/optimizer.pt" in again["uploaded"]
    assert direct.is_complete("runs/r1")


def test_missing_bucket_one_line_error(moto, aws_env, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    with pytest.raises(NexaError, match=r"bucket 'no-such-bucket-here' does not exist .*create it or fix NEXA_S3_PREFIX"):
        S3Store("no-such-bucket-here", "x", endpoint_url=moto).push(src, "runs/r1")


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


def test_transient_failures_are_botocores_to_retry(aws_env):
    store = S3Store(BUCKET, "x", endpoint_url="http://127.0.0.1:9", request_attempts=4)
    assert store.client.meta.config.retries == {"total_max_attempts": 4, "mode": "adaptive"}
    # What reaches us has had all its attempts: the message says how many (botocore counts a ClientError's).
    slow = _client_error("SlowDown", 503)
    slow.response["ResponseMetadata"]["RetryAttempts"] = 3
    assert store._attempts(slow) == 4
    assert store._attempts(ReadTimeoutError(endpoint_url="http://x")) == 4
    try:  # boto3 wraps a failed upload's ClientError without `from`: the context still counts
        try:
            raise slow
        except ClientError as exc:
            raise S3UploadFailedError(f"Failed to upload: {exc}") from exc
    except S3UploadFailedError as wrapped:
        assert store._attempts(wrapped) == 4
    assert store._attempts(_client_error("AccessDenied", 403)) == 1  # not retried by botocore
    denied = store._translate(_client_error("AccessDenied", 403), "runs/r1/a.bin")
    assert isinstance(denied, NexaError) and f"access denied to s3://{BUCKET}/x/runs/r1/a.bin" in str(denied)


@pytest.mark.parametrize("uri", [
    "", "my-bucket/nexa", "http://my-bucket/nexa", "s3://", "s3:///nexa", "s3://ab", "s3://My-Bucket",
    "s3://my_bucket", "s3://-bucket", "s3://bucket-", "s3://" + "b" * 64, "s3://192.168.1.1",
    "s3://my-bucket/../x", "s3://my-bucket/a/../../x", "s3://my-bucket/a\\b",
])
def test_bad_s3_uris(uri):
    with pytest.raises(NexaError) as err:
        parse_s3_uri(uri)
    message = str(err.value)
    assert message.startswith(f"NEXA_S3_PREFIX={uri!r} is not a valid S3 location")
    assert "s3://my-bucket/nexa" in message and "\n" not in message
    with pytest.raises(NexaError, match="--durable"):
        parse_s3_uri(uri, field="--durable")


def test_good_s3_uris():
    assert parse_s3_uri("s3://my-bucket") == ("my-bucket", "")
    assert parse_s3_uri("s3://my.bucket-1/a/b/") == ("my.bucket-1", "a/b")


def test_missing_credentials_one_line_error(moto, prefix, aws_env, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "src"
    make_tree(src)
    store = store_for(moto, prefix)  # constructing needs no credentials: the first request does
    with pytest.raises(NexaError) as err:
        store.push(src, "runs/r1")
    message = str(err.value)
    assert message.startswith(f"no AWS credentials found for s3://{BUCKET}/{prefix}; set AWS_ACCESS_KEY_ID/")
    assert "\n" not in message
    with pytest.raises(NexaError, match="no AWS credentials found"):
        store.pull("runs/r1", tmp_path / "out")
