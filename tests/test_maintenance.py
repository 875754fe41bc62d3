"""The nightly maintenance job applies retention through the same core step as `nexa cleanup`."""

from __future__ import annotations

import os
import time

import dagster as dg

from nexa_core.config import validate_config
from nexa_dagster.definitions import defs
from nexa_dagster.defs.ops.maintenance import maintenance
from nexa_dagster.resources import S3StorageResource
from nexa_dagster.resources.recipe import recipe_from_values


def _checkpoint(root, run_id, step, age_days):
    path = root / "scratch/runs" / run_id / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"x" * 1000)
    old = time.time() - age_days * 86400
    for p in (path / "model.safetensors", path):
        os.utime(p, (old, old))
    return path


def test_nightly_schedule_runs_retention_that_keeps_the_latest(recipe, tmp_path):
    run_id = "tiny_20260101_000000"
    ckpts = [_checkpoint(tmp_path, run_id, step, age_days=30) for step in (10, 20, 30, 40)]
    (tmp_path / "durable/runs" / run_id).mkdir(parents=True)
    (tmp_path / "durable/runs" / run_id / "run.json").write_text('{"status": "complete", "train": {}}')
    nexa = recipe_from_values(validate_config(recipe).model_dump(mode="json"))
    result = maintenance.execute_in_process(resources={"nexa": nexa, "storage": S3StorageResource()}, run_config={
        "ops": {"apply_retention": {"config": {"days": 7, "prune_size": "+2G", "keep_latest": 2}}}})
    assert result.success
    assert [p.exists() for p in ckpts] == [False, False, True, True]  # old ones gone, latest 2 kept
    schedule = defs.resolve_schedule_def("nightly_maintenance")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.job_name == "maintenance"
    assert isinstance(schedule, dg.ScheduleDefinition)
