"""The production set-up on this machine's real services, for tests: a DAGSTER_HOME with deploy/dagster.yaml over a
fresh PostgreSQL database, compute logs and step outputs on a loopback moto S3 server, a RabbitMQ vhost of the
test's own (so no other test's messages reach its workers), and Celery workers in their own process groups."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT
from tests.process_helpers import group_alive, stop_group

BUCKET = "nexa-prod"
BIN = Path(sys.executable).parent


def production_env(home: Path, database: str, s3_endpoint: str, prefix: str) -> dict:
    """What deploy/dagster.yaml, the S3 hand-off and the durable store read, as an operator would export it."""
    empty = home / "aws-empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DAGSTER_", "NEXA_S3", "NEXA_CELERY"))}
    return {**env, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "NEXA_MLFLOW": "off",
            "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": database,
            "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_COMPUTE_LOG_BUCKET": BUCKET, "DAGSTER_COMPUTE_LOG_PREFIX": f"{prefix}/compute-logs",
            "NEXA_S3_PREFIX": f"s3://{BUCKET}/{prefix}", "NEXA_S3_ENDPOINT_URL": s3_endpoint,
            "AWS_ENDPOINT_URL_S3": s3_endpoint,  # boto3's own variable: the compute log manager has no endpoint field
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_SHARED_CREDENTIALS_FILE": str(empty), "AWS_CONFIG_FILE": str(empty), "AWS_EC2_METADATA_DISABLED": "true"}


def production_home(home: Path) -> Path:
    """A DAGSTER_HOME holding the project's deploy/dagster.yaml, unchanged."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return home


def execute_job(job: str, env: dict, cwd: Path | str, *extra: str) -> subprocess.Popen:
    """`dagster job execute` as CI runs it, in its own process group (output in <cwd>/<job>-<n>.log)."""
    log = Path(cwd) / f"{job}-{uuid.uuid4().hex[:6]}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "dagster"), "job", "execute", "-m", "nexa_dagster.definitions", "-j", job,
                                 *extra], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout: float = 540) -> str:
    try:
        proc.wait(timeout=timeout)
    finally:
        stop_group(proc)
    return proc.log.read_text(errors="replace")


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of this test's own on 127.0.0.1:5672 (guest/guest); yields its broker URL, deleted after."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl not found: the Celery tests need this machine's RabbitMQ (FIELD_NOTES.md)")
    name = f"nexa_test_{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True,
                       capture_output=True, timeout=60)
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", name], capture_output=True, timeout=60)


class Worker:
    """One Celery worker (`celery -A nexa_dagster.execution.worker worker`) in its own process group."""

    def __init__(self, name: str, queue: str, env: dict, log: Path, concurrency: int = 1):
        self.name, self.queue, self.env, self.log, self.concurrency = name, queue, env, log, concurrency
        self.node = f"{name}@{os.uname().nodename}"
        self.proc: subprocess.Popen | None = None

    def launch(self) -> Worker:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "celery"), "-A", "nexa_dagster.execution.worker", "worker", "-Q", self.queue,
                 "-n", self.node, "-c", str(self.concurrency), "-l", "INFO", "--without-mingle", "--without-gossip"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts = self.log.read_text(errors="replace").count(" ready.") + 1
        return self

    def wait_ready(self, timeout: float = 120) -> Worker:
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count(f"{self.node} ready.") < self.starts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {self.node} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)
        return self

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a lost node would: no graceful shutdown, no goodbye to the broker."""
        import signal

        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while group_alive(self.proc.pid):
            assert time.monotonic() < deadline, f"worker {self.node}'s processes outlived SIGKILL"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            assert not group_alive(self.proc.pid), f"worker {self.node} left processes behind"


@contextmanager
def production_instance(env: dict):
    """The instance of `env` (its DAGSTER_HOME and DAGSTER_PG_*), opened in this process as the UI would."""
    from unittest import mock

    import dagster as dg

    with mock.patch.dict(os.environ, env, clear=True):
        instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.fixture
def s3(tmp_path) -> Iterator[str]:
    """A loopback moto S3 server (own process group) with the production bucket; yields its endpoint."""
    from tests.test_storage_s3 import _start_moto, admin_client

    proc, endpoint = _start_moto(tmp_path / "moto_server.log")
    try:
        admin_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_group(proc)
