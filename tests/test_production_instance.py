"""deploy/dagster.yaml, the production instance, on this machine's real services: with only the environment set
(DAGSTER_PG_*, the compute-log bucket) it keeps runs and events in a fresh PostgreSQL database (read back with
psycopg2), step output in S3 (loopback moto_server), queues runs, and sizes the `gpu` pool; a missing variable is
named. The full `training_pipeline` on this instance, with its steps on Celery workers, is tests/test_celery_workers.py."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from tests.postgres_helpers import fresh_database
from tests.production_helpers import (
    BUCKET,
    production_env,
    production_home,
    production_instance,
    s3,  # noqa: F401 (a fixture)
)
from tests.test_storage_s3 import admin_client

pytestmark = pytest.mark.slow


@dg.op
def say_hello(context) -> None:
    print("hello from a step")  # noqa: T201 - the compute log under test
    context.log.info("a step's own log line")


@dg.job(executor_def=dg.in_process_executor)
def hello_job():
    say_hello()


def test_runs_and_events_in_postgresql_and_step_logs_in_s3(tmp_path, s3, monkeypatch):
    import psycopg2

    home = production_home(tmp_path / "home")
    with fresh_database("nexa_instance") as database:
        env = production_env(home, database, s3, "instance")
        monkeypatch.chdir(tmp_path)
        for name in [n for n in os.environ if n.startswith(("AWS_", "DAGSTER_"))]:
            monkeypatch.delenv(name)
        for name, value in env.items():  # the boto3 clients of the compute log manager read them when they upload
            monkeypatch.setenv(name, value)
        with production_instance(env) as instance:
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert instance.get_concurrency_config().pool_config.default_pool_limit == 8  # the fleet's GPUs
            result = dg.execute_job(dg.reconstructable(hello_job), instance=instance)
            assert result.success
            run_id = result.run_id
        with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database) as conn, conn.cursor() as cur:
            cur.execute("SELECT run_id, pipeline_name, status FROM runs")
            assert cur.fetchall() == [(run_id, "hello_job", "SUCCESS")]
            cur.execute("SELECT dagster_event_type FROM event_logs WHERE run_id = %s AND step_key = 'say_hello'", (run_id,))
            assert {"STEP_START", "STEP_SUCCESS"} <= {row[0] for row in cur.fetchall()}
        conn.close()
    client = admin_client(s3)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="instance/compute-logs/").get("Contents", [])]
    assert keys and all(run_id in key for key in keys), keys
    logs = "".join(client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() for key in keys)
    assert "hello from a step" in logs and "a step's own log line" in logs
    assert not [p for p in Path(home).rglob("*") if p.suffix in (".db", ".sqlite")]  # nothing went to SQLite


def test_a_missing_variable_is_named(tmp_path):
    home = production_home(tmp_path / "home")
    env = {k: v for k, v in production_env(home, "unused", "http://127.0.0.1:9", "x").items() if k != "DAGSTER_PG_DB"}
    with pytest.raises(dg.DagsterInvalidConfigError, match='environment variable "DAGSTER_PG_DB" which is not set'):
        with production_instance(env):
            pass

