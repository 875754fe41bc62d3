"""The real GPU path (real NVML, CUDA training with MFU). Skipped without CUDA; not run on the dev machine."""

from __future__ import annotations

import json

import pytest
import torch

from nexa_core.common.layout import Layout
from nexa_core.config import TelemetryConfig, validate_config
from nexa_core.data import dataset_for
from nexa_core.telemetry import measure
from nexa_core.training.steps import train_run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_real_nvml_sampling_and_mfu_while_training(recipe, tmp_path):
    cfg = validate_config({**recipe, "training": {**recipe["training"], "precision": "bf16"}})
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    run_id = "tiny_20260101_000000"
    with measure(TelemetryConfig(interval_s=0.2, price_per_gpu_hour=2.0), layout.run_dir(run_id) / "telemetry",
                 "train") as m:
        result = train_run(cfg, dataset.path, run_id, layout)
    s = m.summary
    assert s["source"] == "nvml" and s["gpu_count"] >= 1 and s["gpus"][0]["uuid"].startswith(("GPU-", "MIG-"))
    assert s["gpu_memory_peak_mb"] > 0 and s["gpu_power_mean_w"] > 0 and s["energy_kwh"] > 0
    assert s["cost_usd"] >= s["gpu_hours"] * 2.0 > 0
    log = [json.loads(x) for x in open(result.log_path)]
    timed = [r for r in log if "tokens_per_second" in r]
    assert timed and all(r["gpu_memory_peak_mb"] > 0 for r in timed)
    if any("mfu" in r for r in timed):  # only on a GPU in the peak table
        assert all(0 < r["mfu"] < 1 for r in timed if "mfu" in r)
