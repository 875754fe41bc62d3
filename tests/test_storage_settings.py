"""One storage factory (`StorageSettings` -> `open_durable` / `s3_client`) serves every push, pull, archive and drop
listing; the Dagster storage resource only supplies settings; uploads are verified by S3's own CRC32 checksum
and a download that does not verify is fetched again, then refused. Against the loopback moto_server."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import zlib

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.storage.settings import StorageSettings, open_durable
from tests.test_storage_s3 import BUCKET, MiB, admin_client, aws_env, moto, prefix, store_for  # noqa: F401

pytestmark = pytest.mark.slow


def _b64_crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _no_storage_env(monkeypatch) -> None:
    for name in ("NEXA_S3_PREFIX", "NEXA_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------------------------- settings


def test_aws_endpoint_url_alone_is_honoured(moto, prefix, aws_env, monkeypatch, tmp_path):  # noqa: F811
    _no_storage_env(monkeypatch)
    monkeypatch.setenv("NEXA_S3_PREFIX", f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    settings = StorageSettings.from_env()
    assert settings.endpoint_url == moto and settings.region == "us-east-1"
    layout = Layout(tmp_path / "scratch", tmp_path / "durable", tmp_path / "shared")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.txt").write_text("hello")
    assert open_durable(settings, layout).push(tmp_path / "run", "r1")["uri"] == f"s3://{BUCKET}/{prefix}/r1"
    monkeypatch.setenv("NEXA_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    assert StorageSettings.from_env().endpoint_url == "http://127.0.0.1:1"  # ours wins over boto3's variable


def test_drop_listing_goes_through_the_factory_client(moto, prefix, aws_env, monkeypatch):  # noqa: F811
    """A drop source on an S3-compatible endpoint given only as AWS_ENDPOINT_URL lists (path-style addressing)."""
    from nexa_core.data.drops import DropSource
    from nexa_dagster.resources import S3StorageResource

    _no_storage_env(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    admin_client(moto).put_object(Bucket=BUCKET, Key=f"{prefix}/raw/d1.csv", Body=b"review,sentiment\nok,pos\n")
    source = DropSource(f"s3://{BUCKET}/{prefix}/raw", storage=S3StorageResource().settings())
    assert [d.name for d in source.list()] == ["d1.csv"]
    assert source._store.client.meta.config.retries["mode"] == "adaptive"  # botocore's retries, as for runs


def test_bad_prefix_is_one_line_naming_the_field(monkeypatch):
    from nexa_dagster.resources import S3StorageResource

    _no_storage_env(monkeypatch)
    monkeypatch.setenv("NEXA_S3_PREFIX", "gs://my-bucket/nexa")
    with pytest.raises(NexaError) as err:
        StorageSettings.from_env()
    assert str(err.value).startswith("NEXA_S3_PREFIX='gs://my-bucket/nexa' is not a valid S3 location: the scheme")
    assert "\n" not in str(err.value)
    monkeypatch.delenv("NEXA_S3_PREFIX")
    with pytest.raises(NexaError, match=r"^S3StorageResource.prefix='http://x/y' is not a valid S3 location"):
        S3StorageResource(prefix="http://x/y").settings()
    with pytest.raises(NexaError, match="not an http\\(s\\) URL; set NEXA_S3_ENDPOINT_URL"):
        StorageSettings(endpoint_url="localhost:9000")


def test_secrets_stay_out_of_repr_and_the_launch_spec(tmp_path, monkeypatch, recipe):
    from nexa_core.training import launch as launch_module
    from nexa_dagster.resources import S3StorageResource

    _no_storage_env(monkeypatch)
    settings = S3StorageResource(prefix=f"s3://{BUCKET}/p", aws_access_key_id="AKIAEXAMPLE",
                                 aws_secret_access_key="s3cr3t-value").settings()
    assert settings.secret_access_key == "s3cr3t-value"  # used for the client...
    assert "s3cr3t" not in repr(settings) and "AKIAEXAMPLE" not in repr(settings)  # ...never shown
    monkeypatch.setattr(launch_module.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    layout = Layout.from_storage(validate_config(recipe).storage)
    with pytest.raises(NexaError, match="torchrun exit code 1"):
        launch_module.launch(validate_config(recipe), tmp_path, "tiny_20260101_000000", layout, storage=settings)
    text = (layout.run_dir("tiny_20260101_000000") / "launch.json").read_text()
    assert "s3cr3t" not in text and "AKIAEXAMPLE" not in text
    assert StorageSettings.from_public(json.loads(text)["kwargs"]["storage"]).prefix == f"s3://{BUCKET}/p"


# --------------------------------------------------------------------------------------------- integrity


def test_upload_carries_a_server_verified_crc32_checksum(moto, prefix, aws_env, tmp_path):  # noqa: F811
    small, big = os.urandom(300_000), os.urandom(9 * MiB)  # one PUT; multipart (8 MiB parts)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "small.bin").write_bytes(small)
    (tmp_path / "src" / "big.bin").write_bytes(big)
    store = store_for(moto, prefix)
    store.push(tmp_path / "src", "runs/r1")
    client = admin_client(moto)
    head = client.head_object(Bucket=BUCKET, Key=f"{prefix}/runs/r1/small.bin", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _b64_crc32(small)
    head = client.head_object(Bucket=BUCKET, Key=f"{prefix}/runs/r1/big.bin", ChecksumMode="ENABLED")
    composite = _b64_crc32(zlib.crc32(big[:8 * MiB]).to_bytes(4, "big") + zlib.crc32(big[8 * MiB:]).to_bytes(4, "big"))
    assert head["ChecksumCRC32"].partition("-")[0] == composite  # S3's multipart rule: checksum of part checksums

    # The skip check trusts the server's checksum, not our metadata echoed back: an object replaced with other
    # bytes of the same size, our sha256 metadata kept, is uploaded again.
    key = f"{prefix}/runs/r1/small.bin"
    meta = client.head_object(Bucket=BUCKET, Key=key)["Metadata"]
    client.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(300_000), Metadata=meta, ChecksumAlgorithm="CRC32")
    assert store.push(tmp_path / "src", "runs/r1")["uploaded"] == ["small.bin"]
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == small


def _counting_downloads(store, corrupt_first: int):
    calls = []
    real = store._get_file

    def get_file(key, dest):
        real(key, dest)
        calls.append(key)
        if len(calls) <= corrupt_first:
            dest.write_bytes(b"x" + dest.read_bytes()[1:])  # a flipped byte, as a bad disk or network would
    store._get_file = get_file
    return calls


def test_a_corrupted_download_is_retried_then_refused(moto, prefix, aws_env, tmp_path):  # noqa: F811
    pkg = tmp_path / "r1.tar.gz"
    pkg.write_bytes(os.urandom(200_000))
    store = store_for(moto, prefix, retries=3, backoff_base=0.01)
    store.push_file(pkg, "packages/r1.tar.gz")

    calls = _counting_downloads(store, corrupt_first=1)  # corrupt once: the second fetch verifies
    store.pull_file("packages/r1.tar.gz", tmp_path / "got" / "r1.tar.gz")
    assert len(calls) == 2 and (tmp_path / "got" / "r1.tar.gz").read_bytes() == pkg.read_bytes()

    calls = _counting_downloads(store, corrupt_first=99)  # corrupt every time: refused after `retries`
    with pytest.raises(NexaError) as err:
        store.pull_file("packages/r1.tar.gz", tmp_path / "again" / "r1.tar.gz")
    message = str(err.value)
    assert "does not match its completion record" in message and "after 3 attempts" in message
    assert "\n" not in message and len(calls) == 3
    assert not (tmp_path / "again" / "r1.tar.gz").exists()


# --------------------------------------------------------------------------------------------- Dagster


def _bucket_keys(endpoint: str, under: str) -> set[str]:
    pages = admin_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=under + "/")
    return {item["Key"][len(under) + 1:] for page in pages for item in page.get("Contents", [])}


def test_storage_resource_reaches_the_best_checkpoint_push_during_training(recipe, moto, prefix, aws_env,  # noqa: F811
                                                                           monkeypatch):
    """No NEXA_S3_PREFIX: only the resource says where; the best checkpoint lands there during training
    (run_mirror is not run, so nothing else could have put it there)."""
    from nexa_dagster.resources import S3StorageResource
    from tests.dagster_helpers import metadata, run_job

    _no_storage_env(monkeypatch)
    storage = S3StorageResource(prefix=f"s3://{BUCKET}/{prefix}", endpoint_url=moto, region_name="us-east-1")
    result = run_job("train_only", recipe, storage=storage, selection=["training_dataset", "trained_model"])
    assert result.success
    run_id = metadata(result, "trained_model")["run_id"]
    assert f"{run_id}/best/_NEXA_COMPLETE.json" in _bucket_keys(moto, prefix)


def test_storage_resource_reaches_the_cleanup_archive(recipe, moto, prefix, aws_env, monkeypatch):  # noqa: F811
    from nexa_dagster.defs.ops.maintenance import maintenance
    from nexa_dagster.resources import S3StorageResource
    from nexa_dagster.resources.recipe import recipe_from_values

    _no_storage_env(monkeypatch)
    layout = Layout.from_storage(validate_config(recipe).storage)
    run_id = "tiny_20260101_000000"
    old = time.time() - 30 * 86400
    for step in (10, 20, 30):
        path = layout.checkpoints_dir(run_id) / f"checkpoint-{step}"
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(os.urandom(1000))
        for p in (path / "model.safetensors", path):
            os.utime(p, (old, old))
    layout.run_dir(run_id).mkdir(parents=True)
    (layout.run_dir(run_id) / "run.json").write_text('{"status": "complete", "train": {}}')
    storage = S3StorageResource(prefix=f"s3://{BUCKET}/{prefix}", endpoint_url=moto, region_name="us-east-1")
    nexa = recipe_from_values(validate_config(recipe).model_dump(mode="json"))
    result = maintenance.execute_in_process(resources={"nexa": nexa, "storage": storage}, run_config={"ops": {
        "apply_retention": {"config": {"days": 7, "prune_size": "+2G", "keep_latest": 2, "archive": True}}}})
    assert result.success
    archived = {k for k in _bucket_keys(moto, prefix) if k.startswith("archive/") and k.endswith("_NEXA_COMPLETE.json")}
    assert len(archived) == 1 and "checkpoint-10/" in next(iter(archived))
