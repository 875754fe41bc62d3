"""The drop sensors against a real folder and a loopback S3 server, with a real Dagster instance: new,
repeated, changed and malformed drops; then the drop's run, its check, and the automation that follows."""

from __future__ import annotations

import json
import uuid

import dagster as dg
import pandas as pd
import pytest

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.data.incremental import drop_names
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.drops.partitions import RAW_DROPS
from nexa_dagster.defs.drops.sensors import drop_dataset_sensor, raw_drops_folder_sensor, raw_drops_s3_sensor
from nexa_dagster.resources import S3StorageResource
from tests.dagster_helpers import metadata, project_defs, run_job, tick_sensor
from tests.test_storage_s3 import aws_env, moto, prefix  # noqa: F401 - the loopback S3 fixtures
from tests.tiny import write_reviews_csv


def _requested(result) -> list[str]:
    return sorted(r.partition_key for r in (result.run_requests or []))


@pytest.fixture
def drops_recipe(recipe, tmp_path):
    recipe["data"]["drops"] = {"folder": str(tmp_path / "raw")}
    (tmp_path / "raw").mkdir()
    return recipe


def test_folder_sensor_registers_new_drops_once_and_reports_bad_files(drops_recipe, tmp_path, capsys):
    raw = tmp_path / "raw"
    frame = pd.read_csv(write_reviews_csv(tmp_path / "src.csv"))
    frame.iloc[:80].to_csv(raw / "a.csv", index=False)
    frame.iloc[80:160].to_json(raw / "b.jsonl", orient="records", lines=True)
    frame.iloc[160:].to_parquet(raw / "c.parquet")
    (raw / "notes.txt").write_text("not data")  # unsupported format
    (raw / "bad name.csv").write_text("review,sentiment\nx,pos\n")  # a space in the name
    (raw / "empty.csv").write_text("")
    (raw / ".upload.csv.tmp").write_text("half")  # an in-progress upload: ignored silently
    instance = dg.DagsterInstance.ephemeral()

    first = tick_sensor(raw_drops_folder_sensor, instance, drops_recipe)
    assert _requested(first) == ["a.csv", "b.jsonl", "c.parquet"]
    assert sorted(instance.get_dynamic_partitions(RAW_DROPS.name)) == ["a.csv", "b.jsonl", "c.parquet"]
    assert {r.run_key for r in first.run_requests} == {f"{n}@{json.loads(first.cursor)['handled'][n]}"
                                                        for n in ("a.csv", "b.jsonl", "c.parquet")}
    handled = json.loads(first.cursor)["handled"]
    assert handled["notes.txt"].startswith("skipped:") and handled["bad name.csv"].startswith("skipped:")
    assert ".upload.csv.tmp" not in handled
    log = capsys.readouterr().err
    assert "skipping folder drop notes.txt: unsupported format" in log
    assert "skipping folder drop empty.csv: empty file" in log

    # The same files on the next tick: nothing requested, and the bad files are not reported again.
    again = tick_sensor(raw_drops_folder_sensor, instance, drops_recipe, cursor=first.cursor)
    assert _requested(again) == [] and "skipping" not in capsys.readouterr().err

    # A new drop, a drop changed in place, and the empty file now written: the new one and the filled one only.
    frame.iloc[:40].assign(review=lambda f: f["review"] + " new").to_csv(raw / "d.csv", index=False)
    frame.iloc[:10].to_csv(raw / "a.csv", index=False)
    frame.iloc[100:140].assign(review=lambda f: f["review"] + " late").to_csv(raw / "empty.csv", index=False)
    third = tick_sensor(raw_drops_folder_sensor, instance, drops_recipe, cursor=again.cursor)
    assert _requested(third) == ["d.csv", "empty.csv"]
    assert "drop a.csv changed after it was handled" in capsys.readouterr().err

    # A restarted daemon that lost its cursor requests nothing twice: the partitions are the record.
    restarted = tick_sensor(raw_drops_folder_sensor, instance, drops_recipe, cursor=None)
    assert _requested(restarted) == []
    assert sorted(instance.get_dynamic_partitions(RAW_DROPS.name)) == [
        "a.csv", "b.jsonl", "c.parquet", "d.csv", "empty.csv"]


def test_s3_sensor_skips_without_a_prefix(drops_recipe):
    result = tick_sensor(raw_drops_s3_sensor, dg.DagsterInstance.ephemeral(), drops_recipe)
    assert isinstance(result, dg.SkipReason) and "s3_prefix is not set" in result.skip_message


def test_drop_run_processes_valid_and_reports_malformed_drops_then_automation_follows(drops_recipe, tmp_path):
    raw = tmp_path / "raw"
    frame = pd.read_csv(write_reviews_csv(tmp_path / "src.csv"))
    frame.iloc[:120].to_csv(raw / "good.csv", index=False)
    frame.iloc[:60].rename(columns={"sentiment": "stars"}).to_csv(raw / "wrong-columns.csv", index=False)
    instance = dg.DagsterInstance.ephemeral()
    tick = tick_sensor(raw_drops_folder_sensor, instance, drops_recipe)
    assert _requested(tick) == ["good.csv", "wrong-columns.csv"]

    defs = project_defs(drops_recipe)
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the daemon's tick before the runs
    assert before.get_num_requested(dg.AssetKey("incremental_dataset")) == 0

    good = run_job("ingest_drop", drops_recipe, instance=instance, partition="good.csv")
    assert good.success
    meta = metadata(good, "raw_dataset")
    assert meta["valid"] is True and meta["rows"] == 120 and meta["rows_train"] + meta["rows_test"] <= 120
    [check] = good.get_asset_check_evaluations()
    assert check.check_name == "drop_is_valid" and check.passed

    bad = run_job("ingest_drop", drops_recipe, instance=instance, partition="wrong-columns.csv")
    meta = metadata(bad, "raw_dataset")
    assert meta["valid"] is False and "data.label_column: column 'sentiment' not in drop wrong-columns.csv" in meta["reason"]
    [check] = bad.get_asset_check_evaluations()
    assert check.passed is False

    layout = Layout.from_storage(validate_config(drops_recipe).storage)
    assert drop_names(layout.drops_dir) == {"good.csv": "valid", "wrong-columns.csv": "invalid"}

    # Declarative automation: the new drop makes incremental_dataset due (the failed drop does not block it).
    due = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    assert due.get_num_requested(dg.AssetKey("incremental_dataset")) == 1
    for name in ("training_dataset", "teacher_inputs", "student_model"):  # the sensor below takes it from here
        assert due.get_num_requested(dg.AssetKey(name)) == 0, name
    assert tick_sensor(drop_dataset_sensor, instance, drops_recipe).skip_message.startswith("no new incremental_dataset")

    built = run_job("build", drops_recipe, instance=instance, selection=["incremental_dataset"])
    assert built.success
    version = metadata(built, "incremental_dataset")
    assert version["rows_train"] + version["rows_validation"] + version["rows_test"] == 120
    due = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=due.cursor)
    assert due.get_num_requested(dg.AssetKey("incremental_dataset")) == 0  # handled: nothing new since

    # The new version becomes teacher-input set drops-<version> and one distillation_pipeline run for it.
    handed = tick_sensor(drop_dataset_sensor, instance, drops_recipe)
    key = f"drops-{version['dataset_version']}"
    [request] = handed.run_requests
    assert (request.partition_key, request.run_key, request.job_name) == (key, key, None)
    assert drop_dataset_sensor.job_name == "distillation_pipeline"
    assert instance.get_dynamic_partitions(TEACHER_INPUTS.name) == [key]
    again = tick_sensor(drop_dataset_sensor, instance, drops_recipe, cursor=handed.cursor)  # a restart resumes here
    assert isinstance(again, dg.SkipReason)

    # Re-running the drop's partition reads nothing twice: the index answers, no rows are added.
    again = run_job("ingest_drop", drops_recipe, instance=instance, partition="good.csv")
    assert metadata(again, "raw_dataset")["reused"] is True
    rebuilt = run_job("build", drops_recipe, instance=instance, selection=["incremental_dataset"])
    assert rebuilt.success and not rebuilt.asset_materializations_for_node("incremental_dataset")


@pytest.mark.slow
def test_s3_sensor_and_drop_run_against_a_loopback_server(drops_recipe, tmp_path, moto, aws_env, prefix):
    from tests.test_storage_s3 import BUCKET, admin_client  # noqa: I001

    drops_recipe["data"]["drops"]["s3_prefix"] = f"s3://{BUCKET}/{prefix}/raw"
    storage = S3StorageResource(endpoint_url=moto)
    client = admin_client(moto)
    frame = pd.read_csv(write_reviews_csv(tmp_path / "src.csv"))
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/raw/s3-drop.csv", Body=frame.iloc[:90].to_csv(index=False))
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/raw/readme.md", Body=b"# not data")
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/raw/sub/nested.csv", Body=b"review,sentiment\nx,pos\n")
    instance = dg.DagsterInstance.ephemeral()

    first = tick_sensor(raw_drops_s3_sensor, instance, drops_recipe, storage=storage)
    assert _requested(first) == ["s3-drop.csv"]
    assert json.loads(first.cursor)["handled"]["readme.md"].startswith("skipped:")
    assert _requested(tick_sensor(raw_drops_s3_sensor, instance, drops_recipe, cursor=first.cursor, storage=storage)) == []

    client.put_object(Bucket=BUCKET, Key=f"{prefix}/raw/s3-drop-2.jsonl",
                      Body=frame.iloc[90:150].to_json(orient="records", lines=True))
    second = tick_sensor(raw_drops_s3_sensor, instance, drops_recipe, cursor=first.cursor, storage=storage)
    assert _requested(second) == ["s3-drop-2.jsonl"]

    result = run_job("ingest_drop", drops_recipe, instance=instance, partition="s3-drop-2.jsonl", storage=storage)
    meta = metadata(result, "raw_dataset")
    assert meta["valid"] is True and meta["rows"] == 60 and meta["source"].startswith(f"s3://{BUCKET}/{prefix}/raw")


def _tick(defs: dg.Definitions, name: str, instance, cursor: str | None = None):
    """One evaluation of sensor `name` of `defs`, with that Definitions' own resources (as the daemon does)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources)
    return defs.resolve_sensor_def(name)(context)


def test_a_bad_s3_prefix_skips_only_the_s3_sensor_with_its_reason_given_once(drops_recipe, tmp_path):
    # A typo'd store: the recipe (and so the code location) loads; only the S3 sensor stops, and says why.
    drops_recipe["data"]["drops"]["s3_prefix"] = "gs://reviews/raw"
    frame = pd.read_csv(write_reviews_csv(tmp_path / "src.csv"))
    frame.iloc[:80].to_csv(tmp_path / "raw" / "a.csv", index=False)
    defs = project_defs(drops_recipe)
    instance = dg.DagsterInstance.ephemeral()

    first = _tick(defs, "raw_drops_s3_sensor", instance)
    reason = first.skip_reason.skip_message
    assert "data.drops.s3_prefix='gs://reviews/raw'" in reason and "not 's3'" in reason and "use e.g." in reason
    assert "\n" not in reason and len(reason) < 300
    # The same reason on the next ticks: one short line saying since when, not the reason again.
    second = _tick(defs, "raw_drops_s3_sensor", instance, cursor=first.cursor)
    third = _tick(defs, "raw_drops_s3_sensor", instance, cursor=second.cursor)
    for later in (second, third):
        note = later.skip_reason.skip_message
        assert "unchanged" in note and "data.drops.s3_prefix unusable since" in note and "gs://" not in note
    # A different bad value is a new reason: given in full.
    drops_recipe["data"]["drops"]["s3_prefix"] = "s3://Not_A_Bucket/raw"
    changed = _tick(project_defs(drops_recipe), "raw_drops_s3_sensor", instance, cursor=third.cursor)
    assert "data.drops.s3_prefix='s3://Not_A_Bucket/raw'" in changed.skip_reason.skip_message

    # The folder sensor of the same Definitions still registers drops, and the drop's run never reads the prefix.
    folder = _tick(defs, "raw_drops_folder_sensor", instance)
    assert _requested(folder) == ["a.csv"]
    instance.add_dynamic_partitions(RAW_DROPS.name, ["a.csv"])
    run = run_job("ingest_drop", drops_recipe, instance=instance, partition="a.csv")
    assert run.success and metadata(run, "raw_dataset")["valid"] is True

    # Unset: the plain skip, and the kept reason is forgotten (it would be given in full again).
    del drops_recipe["data"]["drops"]["s3_prefix"]
    unset = _tick(project_defs(drops_recipe), "raw_drops_s3_sensor", instance, cursor=changed.cursor)
    assert "s3_prefix is not set" in unset.skip_reason.skip_message and "problem" not in json.loads(unset.cursor)


@pytest.mark.slow
def test_s3_sensor_skips_while_its_bucket_is_missing_and_resumes_once_it_exists(drops_recipe, moto, aws_env):
    from tests.test_storage_s3 import admin_client

    bucket = f"drops-{uuid.uuid4().hex[:8]}"
    drops_recipe["data"]["drops"]["s3_prefix"] = f"s3://{bucket}/raw"
    storage = S3StorageResource(endpoint_url=moto)
    instance = dg.DagsterInstance.ephemeral()

    missing = tick_sensor(raw_drops_s3_sensor, instance, drops_recipe, storage=storage)
    message = missing.skip_reason.skip_message
    assert message.startswith(f"s3 drops disabled: data.drops.s3_prefix: cannot list s3://{bucket}/raw")
    assert "NoSuchBucket" in message and "check the prefix, endpoint and credentials" in message
    again = tick_sensor(raw_drops_s3_sensor, instance, drops_recipe, cursor=missing.cursor, storage=storage)
    assert "unchanged" in again.skip_reason.skip_message

    client = admin_client(moto)
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="raw/late.csv", Body=b"review,sentiment\ngood film,pos\n")
        resumed = tick_sensor(raw_drops_s3_sensor, instance, drops_recipe, cursor=again.cursor, storage=storage)
        assert _requested(resumed) == ["late.csv"] and "problem" not in json.loads(resumed.cursor)
    finally:
        client.delete_object(Bucket=bucket, Key="raw/late.csv")
        client.delete_bucket(Bucket=bucket)
