"""A real run mirrored to S3 (moto_server on loopback) by `nexa train`/`nexa package`, then pulled and
deployed on "another machine" (a fresh storage root), verified end to end."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli_helpers import nexa, write_recipe
from tests.test_storage_s3 import BUCKET, admin_client, aws_env, moto, prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def _keys(endpoint: str, prefix: str) -> set[str]:
    pages = admin_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
    return {item["Key"][len(prefix) + 1:] for page in pages for item in page.get("Contents", [])}


def test_run_is_mirrored_during_and_after_training_then_pulled_and_deployed_elsewhere(
        recipe, tmp_path, moto, prefix, aws_env):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env.update(NEXA_S3_PREFIX=f"s3://{BUCKET}/{prefix}", NEXA_S3_ENDPOINT_URL=moto)
    config = str(write_recipe(recipe, tmp_path / "tiny.yaml"))
    out = nexa("train", "--config", config, env=env)
    run_id = json.loads(out.stdout[out.stdout.rindex("{\n"):])["run_id"]
    assert "mirrored new best checkpoint" in out.stderr  # pushed when found, not only at the end
    nexa("package", run_id, "--config", config, env=env)

    keys = _keys(moto, prefix)
    for part in ("final", "best"):
        assert f"{run_id}/{part}/_NEXA_COMPLETE.json" in keys
    assert f"{run_id}/final/model.safetensors" in keys
    assert f"{run_id}/package/{run_id}.tar.gz.complete.json" in keys
    assert f"{run_id}/manifest/{run_id}.json.complete.json" in keys

    other = dict(recipe, storage={k: str(tmp_path / "machine2" / k) for k in ("scratch", "durable", "shared")})
    other_config = str(write_recipe(other, tmp_path / "machine2.yaml"))
    nexa("pull", run_id, "--config", other_config, env=env)
    final = tmp_path / "machine2/durable/runs" / run_id / "final"
    assert (final / "model.safetensors").read_bytes() == \
        (tmp_path / "durable/runs" / run_id / "final/model.safetensors").read_bytes()
    nexa("deploy", run_id, "--config", other_config, env=env)
    # The pulled package deploys (verified unpack) without the training machine's run folder.
    assert (tmp_path / "machine2/durable/deploy/current_model/config.json").is_file()


def test_pull_of_an_unknown_run_is_a_one_line_error(recipe, tmp_path, moto, prefix, aws_env):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env.update(NEXA_S3_PREFIX=f"s3://{BUCKET}/{prefix}", NEXA_S3_ENDPOINT_URL=moto)
    proc = nexa("pull", "tiny_20260101_000000", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")),
                env=env, check=False)
    assert proc.returncode == 2 and "no complete mirror" in proc.stderr


def test_bad_s3_prefix_is_a_one_line_error(recipe, tmp_path):
    proc = nexa("pull", "tiny_20260101_000000", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")),
                env={"NEXA_S3_PREFIX": "s3:/not a bucket"}, check=False)
    assert proc.returncode == 2 and "NEXA_S3_PREFIX" in proc.stderr and proc.stderr.count("\n") == 1


def test_dagster_run_mirror_asset_pushes_through_the_s3_resource(recipe, moto, prefix, aws_env):  # noqa: F811
    from nexa_dagster.resources import S3StorageResource
    from tests.dagster_helpers import metadata, run_job

    storage = S3StorageResource(prefix=f"s3://{BUCKET}/{prefix}", endpoint_url=moto, region_name="us-east-1")
    result = run_job("training_pipeline", recipe, storage=storage)
    assert result.success
    mirrored = metadata(result, "run_mirror")
    run_id = metadata(result, "trained_model")["run_id"]
    assert mirrored["final_uri"] == f"s3://{BUCKET}/{prefix}/{run_id}/final"
    assert f"{run_id}/final/_NEXA_COMPLETE.json" in _keys(moto, prefix)
