"""Telemetry core: sampling with a fake NVML, summaries and energy against hand-computed values, cost,
visible-GPU selection, and the no-GPU path (said once, CPU and memory instead)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from nexa_core.config import TelemetryConfig
from nexa_core.telemetry import TelemetrySampler, measure, notice, summarize
from nexa_core.telemetry.fake import FakeGPU, FakeNVML
from nexa_core.telemetry.nvml import open_gpus
from nexa_core.telemetry.summary import integrate_power_kwh, numeric_figures


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch):
    # A CUDA_VISIBLE_DEVICES set in the shell that runs the tests would hide some fake GPUs: start from none.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _sample(t, gpus):
    return {"t": t, "host": {"cpu_util_pct": 10.0 + t, "memory_used_mb": 500.0 + t, "process_rss_mb": 50.0},
            "gpus": gpus}


def _gpu(index, util, mem, power, temp, energy=None):
    g = {"index": index, "util_pct": util, "memory_used_mb": mem, "power_w": power, "temperature_c": temp}
    if energy is not None:
        g["energy_mj"] = energy
    return g


STATIC = [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-a", "memory_total_mb": 81559.0, "driver": "550"},
          {"index": 1, "name": "Tesla T4", "uuid": "GPU-b", "memory_total_mb": 15360.0, "driver": "550"}]


def test_summary_counter_and_integrated_energy_and_cost_by_hand():
    # GPU 0 has an energy counter; GPU 1 (an older board) has none, so its power is integrated.
    samples = [
        _sample(0, [_gpu(0, 20, 1000, 100, 50, energy=1_000_000), _gpu(1, 0, 100, 100, 40)]),
        _sample(10, [_gpu(0, 60, 3000, 300, 70, energy=3_000_000), _gpu(1, 30, 200, 300, 45)]),
        _sample(30, [_gpu(0, 100, 2000, 200, 65, energy=7_000_000), _gpu(1, 50, 150, 200, 42)]),
    ]
    s = summarize(samples, gpus=STATIC, wall_s=36.0, price_per_gpu_hour=2.5, price_per_kwh=0.3)
    # counter: 7e6 - 1e6 mJ = 6000 J; integrated: (100+300)/2*10 + (300+200)/2*20 = 2000 + 5000 = 7000 J
    assert s["per_gpu"][0]["energy_kwh"] == pytest.approx(6000 / 3.6e6)
    assert s["per_gpu"][0]["energy_source"] == "counter"
    assert s["per_gpu"][1]["energy_kwh"] == pytest.approx(7000 / 3.6e6)
    assert s["per_gpu"][1]["energy_source"] == "integrated_power"
    assert s["energy_kwh"] == pytest.approx(13000 / 3.6e6)
    assert s["energy_source"] == "counter+integrated_power"
    assert s["gpu_util_mean_pct"] == pytest.approx((20 + 60 + 100 + 0 + 30 + 50) / 6)
    assert s["gpu_util_max_pct"] == 100
    assert s["gpu_memory_peak_mb"] == 3000
    assert s["gpu_power_mean_w"] == pytest.approx((200 + 600 + 400) / 3)  # summed over GPUs per sample
    assert s["gpu_temperature_max_c"] == 70
    assert s["gpu_hours"] == pytest.approx(36 / 3600 * 2)
    assert s["cost_gpu_hours_usd"] == pytest.approx(0.02 * 2.5)
    assert s["cost_energy_usd"] == pytest.approx(13000 / 3.6e6 * 0.3)
    assert s["cost_usd"] == pytest.approx(0.05 + 13000 / 3.6e6 * 0.3)
    assert s["cpu_util_mean_pct"] == pytest.approx((10 + 20 + 40) / 3) and s["host_memory_peak_mb"] == 530
    assert numeric_figures(s)["cost_usd"] == pytest.approx(s["cost_usd"])


def test_integrate_power_trapezoids():
    assert integrate_power_kwh([(0, 3600.0), (1000, 3600.0)]) == pytest.approx(1.0)  # 3.6 kW for 1000 s = 1 kWh
    assert integrate_power_kwh([(0, 0.0), (3600, 2000.0)]) == pytest.approx(1.0)  # ramp 0 -> 2 kW over 1 h
    assert integrate_power_kwh([(0, 100.0)]) == 0.0


def test_sampler_with_fake_nvml_energy_counter_wins_over_power():
    fake = FakeNVML([FakeGPU(util_pct=[10, 30, 90], power_w=[100, 200, 300], memory_used_mb=[1000, 4000, 2000],
                             temperature_c=[50, 61, 58], energy_mj=[1000, 3_601_000, 7_201_000])])
    clock = Clock()
    sampler = TelemetrySampler(3600, nvml=fake, clock=clock, price_per_gpu_hour=3.6, price_per_kwh=0.5).start()
    clock.now += 10
    sampler.sample_now()
    clock.now += 10
    s = sampler.stop()
    assert s["samples"] == 3 and s["wall_seconds"] == 20
    assert s["gpu_util_mean_pct"] == pytest.approx(130 / 3) and s["gpu_util_max_pct"] == 90
    assert s["gpu_memory_peak_mb"] == pytest.approx(4000) and s["gpu_temperature_max_c"] == 61
    assert s["energy_kwh"] == pytest.approx(7.2e6 / 3.6e9)  # counter, not the 4000 J of integrated power
    assert s["gpu_hours"] == pytest.approx(20 / 3600)
    assert s["cost_usd"] == pytest.approx(20 / 3600 * 3.6 + 0.002 * 0.5)
    assert sampler.pre["gpus"][0]["util_pct"] == 10 and sampler.post["gpus"][0]["util_pct"] == 90
    assert s["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3" and s["gpus"][0]["driver"] == "550.54.15"
    assert fake.calls[-1] == "nvmlShutdown" and fake.initialised == 0


def test_sampler_without_energy_counter_integrates_power():
    fake = FakeNVML([FakeGPU(power_w=[100, 200, 300], energy_mj=None)])
    clock = Clock()
    sampler = TelemetrySampler(3600, nvml=fake, clock=clock).start()
    clock.now += 10
    sampler.sample_now()
    clock.now += 10
    s = sampler.stop()
    assert s["energy_source"] == "integrated_power"
    assert s["energy_kwh"] == pytest.approx(4000 / 3.6e6)
    assert s["cost_usd"] == 0.0  # prices default to 0: not configured
    # NotSupported is asked once, then that GPU's counter is never called again.
    assert fake.calls.count("nvmlDeviceGetTotalEnergyConsumption") == 1


def test_background_thread_samples_at_the_interval_and_streams_the_series(tmp_path):
    fake = FakeNVML.uniform(2)
    series = tmp_path / "train.jsonl"
    with TelemetrySampler(0.02, nvml=fake, series_path=series) as sampler:
        time.sleep(0.3)
    s = sampler.summary
    assert s["gpu_count"] == 2 and 5 <= s["samples"] <= 20
    lines = [json.loads(line) for line in series.read_text().splitlines()]
    assert len(lines) == s["samples"] and [len(x["gpus"]) for x in lines] == [2] * len(lines)
    assert [x["t"] for x in lines] == sorted(x["t"] for x in lines)
    # the live counter advances at 300 W per GPU: counter energy matches power x time
    assert s["energy_kwh"] == pytest.approx(2 * 300 * s["wall_seconds"] / 3.6e6, rel=0.15)
    assert s["gpu_hours"] == pytest.approx(2 * s["wall_seconds"] / 3600)


def test_cuda_visible_devices_limits_the_gpus(monkeypatch):
    fake = FakeNVML([FakeGPU(uuid=f"GPU-{i}aaa") for i in range(3)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    gpus, _ = open_gpus(fake)
    assert [g["index"] for g in gpus.static] == [2, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1")
    gpus, _ = open_gpus(FakeNVML([FakeGPU(uuid=f"GPU-{i}aaa") for i in range(3)]))
    assert [g["index"] for g in gpus.static] == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    gpus, reason = open_gpus(FakeNVML([FakeGPU()]))
    assert gpus is None and "hides every GPU" in reason


def test_no_gpu_says_so_once_and_reports_cpu_and_memory(caplog, tmp_path):
    notice.reset()
    caplog.set_level(logging.INFO, logger="nexa_core.telemetry")
    summaries = []
    for _ in range(3):
        with measure(TelemetryConfig(interval_s=0.05, price_per_gpu_hour=9.0), tmp_path / "t", "train",
                     nvml=FakeNVML(fail_init=True)) as m:
            time.sleep(0.12)
        summaries.append(m.summary)
    said = [r.getMessage() for r in caplog.records if "no GPU" in r.getMessage()]
    assert len(said) == 1 and "NVML is not available" in said[0] and "CPU and memory" in said[0]
    s = summaries[-1]
    assert s["source"] == "host" and s["gpu_count"] == 0 and s["gpu_util_mean_pct"] is None
    assert s["energy_kwh"] is None and s["gpu_hours"] == 0 and s["cost_usd"] == 0
    assert s["cpu_util_mean_pct"] is not None and 0 <= s["cpu_util_mean_pct"] <= 100
    assert s["host_memory_peak_mb"] > 0 and s["process_rss_peak_mb"] > 0
    doc = json.loads((tmp_path / "t" / "train.json").read_text())
    assert doc["source"] == "host" and doc["no_gpu_reason"].startswith("NVML is not available")
    assert "gpu_util_mean_pct" not in numeric_figures(s) and "cpu_util_mean_pct" in numeric_figures(s)


def test_real_pynvml_on_this_machine_falls_back_cleanly():
    gpus, reason = open_gpus()  # the installed nvidia-ml-py, or its absence
    if gpus is not None:
        gpus.close()
        pytest.skip("this machine has a GPU visible to NVML")
    assert reason and ("NVML" in reason or "pynvml" in reason)


def test_measure_disabled_and_failed_steps(tmp_path):
    with measure(TelemetryConfig(enabled=False), tmp_path / "off", "train") as m:
        pass
    assert m.summary is None and not (tmp_path / "off").exists()
    (tmp_path / "run").mkdir()
    with pytest.raises(RuntimeError):
        with measure(TelemetryConfig(interval_s=0.05), tmp_path / "run" / "telemetry", "train",
                     nvml=FakeNVML.uniform(1)):
            raise RuntimeError("boom")
    doc = json.loads((tmp_path / "run" / "telemetry" / "train.json").read_text())
    assert doc["status"] == "failed" and doc["gpu_count"] == 1 and doc["pre"]["gpus"][0]["util_pct"] == 50


def test_series_waits_for_the_run_folder_then_writes_everything(tmp_path):
    # the run folder is created only after the config is accepted, i.e. after sampling started
    run_dir = tmp_path / "runs" / "x_20260101_000000"
    with measure(TelemetryConfig(interval_s=0.05), run_dir / "telemetry", "train", nvml=FakeNVML.uniform(1)) as m:
        time.sleep(0.1)
        assert not run_dir.exists()
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(json.dumps({"environment_fingerprint": "abc123"}))
        time.sleep(0.1)
    lines = (run_dir / "telemetry" / "train.jsonl").read_text().splitlines()
    assert len(lines) == m.summary["samples"]
    doc = json.loads((run_dir / "telemetry" / "train.json").read_text())
    assert doc["environment_fingerprint"] == "abc123" and doc["stage"] == "train"
