"""Telemetry in Dagster: the `infra_report` asset and its daily schedule, and training/evaluation
materializations carrying GPU figures and cost (fake NVML) with the run's environment fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import jsonschema
import pytest

from nexa_core.config import validate_config
from nexa_core.release.manifest import schema
from nexa_dagster import definitions
from nexa_dagster.defs.ops.infra import infra_report
from nexa_dagster.resources import FakeNVMLTelemetryResource, GPUTrainerResource, NVMLTelemetryResource
from nexa_dagster.resources.recipe import recipe_from_values
from tests.dagster_helpers import metadata as _meta
from tests.dagster_helpers import run_job
from tests.test_telemetry_secrets import PLANTED, assert_clean


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch):
    # A CUDA_VISIBLE_DEVICES set in the shell that runs the tests would hide some fake GPUs: start from none.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _recipe_resource(recipe: dict):
    return recipe_from_values(validate_config(recipe).model_dump(mode="json"))


def test_infra_report_materializes_with_fake_gpus_and_no_secrets(recipe, tmp_path, monkeypatch):
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    result = dg.materialize([infra_report], resources={"nexa": _recipe_resource(recipe),
                                                       "telemetry": FakeNVMLTelemetryResource(gpus=2)})
    assert result.success
    meta = _meta(result, "infra_report")
    path = tmp_path / "durable" / "runs" / "manifests" / "infra_report.json"
    report = json.loads(path.read_text())
    assert meta["path"] == str(path) and meta["fingerprint"] == report["fingerprint"]
    assert meta["gpu_count"] == 2 and [g["uuid"] for g in report["gpus"]] == ["GPU-fake-0000", "GPU-fake-0001"]
    assert report["gpus"][0]["memory_total_mb"] == 81559 and report["driver"] == "550.54.15"
    assert report["environment"]["OMP_NUM_THREADS"] == "4" and meta["manifests"] == 0
    events = "\n".join(str(e) for e in result.all_events)
    assert_clean(path.read_text() + json.dumps(meta, default=str) + events)


def test_infra_report_runs_nightly_after_retention_and_is_wired():
    schedule = definitions.defs.resolve_schedule_def("nightly_infra_report")
    retention = definitions.defs.resolve_schedule_def("nightly_maintenance")
    assert (schedule.cron_schedule, retention.cron_schedule) == ("15 3 * * *", "0 3 * * *")
    job = definitions.defs.resolve_job_def(schedule.job_name)
    assert [k.path[-1] for k in job.asset_layer.executable_asset_keys] == ["infra_report"]
    assert isinstance(definitions.defs.resources["telemetry"], NVMLTelemetryResource)
    assert "infra_report" not in {k.path[-1] for k in definitions.defs.resolve_job_def("training_pipeline")
                                  .asset_layer.executable_asset_keys}


def test_resource_fields_override_the_recipe():
    cfg = validate_config({"data": {"path": "x.csv"}, "telemetry": {"interval_s": 2, "price_per_gpu_hour": 1.5}})
    merged = NVMLTelemetryResource(price_per_kwh=0.2).settings(cfg.telemetry)
    assert (merged.interval_s, merged.price_per_gpu_hour, merged.price_per_kwh, merged.enabled) == (2, 1.5, 0.2, True)
    assert NVMLTelemetryResource(enabled=False).settings(cfg.telemetry).enabled is False


@pytest.mark.slow
def test_training_and_evaluation_carry_telemetry_cost_and_fingerprint(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED["AWS_SECRET_ACCESS_KEY"])
    recipe["telemetry"] = {"interval_s": 0.1, "price_per_gpu_hour": 3.6, "price_per_kwh": 0.25}
    telemetry = FakeNVMLTelemetryResource(gpus=2, util_pct=75, power_w=400, memory_used_mb=2048)
    # device "auto" (CPU here): device "cpu" would hide the GPUs from NVML, as it should on a GPU node
    result = run_job("training_pipeline", recipe, telemetry=telemetry, trainer=GPUTrainerResource())
    assert result.success
    model = _meta(result, "trained_model")
    assert model["telemetry_source"] == "nvml" and model["gpu_count"] == 2
    assert model["gpu_util_mean_pct"] == 75 and model["other_telemetry_figures"]["gpu_util_max_pct"] == 75
    assert model["gpu_memory_peak_mb"] == 2048 and model["gpu_power_mean_w"] == 800  # both GPUs' draw
    wall = model["telemetry_wall_seconds"]
    # gpu_hours keeps 4 significant digits (up to half a unit: 5e-4 of it) and the wall seconds it is compared with
    # are rounded to 0.01 s: both errors add up (approx takes the larger of rel and abs, so abs holds their sum).
    assert model["gpu_hours"] == pytest.approx(2 * wall / 3600, abs=2 * 0.005 / 3600 + 5e-4 * model["gpu_hours"])
    assert model["energy_kwh"] == pytest.approx(800 * wall / 3.6e6, rel=0.1)  # the counter, at 400 W each
    assert model["cost_usd"] == pytest.approx(model["gpu_hours"] * 3.6 + model["energy_kwh"] * 0.25, rel=1e-3)
    assert "gpu" not in model and model["gpus"].records[0].data["uuid"] == "GPU-fake-0000"  # no "no GPU" reason
    run_dir = Path(model["run_dir"])
    record = json.loads((run_dir / "run.json").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    assert record["environment_fingerprint"] == env["fingerprint"] == model["environment_fingerprint"]
    train = json.loads((run_dir / "telemetry" / "train.json").read_text())
    assert train["environment_fingerprint"] == env["fingerprint"] and train["cost_usd"] == pytest.approx(model["cost_usd"], rel=1e-3)
    series = (run_dir / "telemetry" / "train.jsonl").read_text().splitlines()
    assert len(series) == train["samples"] >= 2
    # the training time series: loss, smoothed loss, learning rate, throughput and memory per logged step
    log = [json.loads(x) for x in (run_dir / "logs" / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    timed = [r for r in steps if "samples_per_second" in r]
    # a window of a single step right after an evaluation/save can hold no newly collated batch (the loader
    # prefetches one): that record goes without a rate rather than with a wrong one
    assert len(steps) >= 10 and len(timed) >= len(steps) - 2
    assert all({"loss_ema", "learning_rate", "tokens_per_second", "process_rss_mb"} <= set(r) for r in timed)
    assert all(r["tokens_per_second"] > r["samples_per_second"] > 0 for r in timed)
    assert "mfu" not in steps[-1]  # CPU: no peak to divide by
    report = _meta(result, "evaluation_report")
    assert report["gpu_count"] == 2 and report["cost_usd"] > 0
    assert (run_dir / "telemetry" / "evaluate.json").is_file()
    manifest = json.loads(Path(_meta(result, "run_manifest")["manifest_path"]).read_text())
    jsonschema.validate(manifest, schema())  # the manifest keeps exactly the contract's keys
    assert_clean(json.dumps(train) + json.dumps(env) + (run_dir / "run.json").read_text())
