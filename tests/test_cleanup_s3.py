"""`nexa cleanup --archive` against a real S3 server: archive first, delete locally, later prune the archive
by the same policy while a run's mirrored final/ stays."""

from __future__ import annotations

import os
import time

import pytest

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.retention.cleanup import cleanup
from nexa_core.retention.remote import apply_remote, plan_remote
from nexa_core.storage.settings import StorageSettings, open_durable
from tests.test_storage_s3 import BUCKET, aws_env, moto, prefix  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
RUN_ID = "tiny_20260101_000000"


def _old_checkpoint(layout: Layout, step: int, days: float):
    path = layout.checkpoints_dir(RUN_ID) / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(os.urandom(2000))
    old = time.time() - days * 86400
    for p in (path / "model.safetensors", path):
        os.utime(p, (old, old))
    return path


def test_archive_then_delete_then_prune_the_archive(recipe, moto, prefix, aws_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("NEXA_S3_PREFIX", f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv("NEXA_S3_ENDPOINT_URL", moto)
    layout = Layout.from_storage(validate_config(recipe).storage)
    old = [_old_checkpoint(layout, step, days=30) for step in (10, 20, 30, 40)]
    run_dir = layout.run_dir(RUN_ID)
    (run_dir / "final").mkdir(parents=True)
    (run_dir / "final" / "config.json").write_text("{}")
    (run_dir / "run.json").write_text('{"status": "complete", "train": {}}')
    settings = StorageSettings.from_env()
    store = open_durable(settings, layout)
    store.push(run_dir / "final", f"{RUN_ID}/final")

    dry = cleanup(layout, storage=settings, days=7, prune_size=None)
    assert not dry["applied"] and all(p.exists() for p in old)  # a dry run touches nothing

    report = cleanup(layout, storage=settings, days=7, prune_size=None, apply=True, archive=True)
    assert [p.exists() for p in old] == [False, False, True, True]
    archived = store.complete_keys("archive")
    assert len(archived) == 2 and all(key.endswith(("checkpoint-10", "checkpoint-20")) for key in archived)
    assert report["freed_bytes"] >= 4000

    month_later = plan_remote(store, days=7, prune_size=None, now=time.time() + 30 * 86400)
    assert sorted(c.key for c in month_later) == archived
    apply_remote(store, month_later)
    assert store.complete_keys("archive") == [] and not store.list_keys("archive")
    assert store.is_complete(f"{RUN_ID}/final")  # the mirror of what must never be lost stays
