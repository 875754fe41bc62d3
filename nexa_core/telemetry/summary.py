"""Turn telemetry samples into the figures users read: utilisation, memory, power, energy, temperature,
wall time, GPU-hours and cost. Energy comes from each GPU's total-energy counter where it has one
(difference of the first and last reading), else from integrating sampled power over time (trapezoids).
"""

from __future__ import annotations

from statistics import fmean

MJ_PER_KWH = 3.6e9  # millijoules in a kilowatt-hour
J_PER_KWH = 3.6e6


def _values(samples: list[dict], gpu: int, key: str) -> list[tuple[float, float]]:
    """(t, value) pairs of one GPU's reading, skipping samples where it was unavailable."""
    out = []
    for s in samples:
        gpus = s.get("gpus") or []
        if gpu < len(gpus) and gpus[gpu].get(key) is not None:
            out.append((s["t"], float(gpus[gpu][key])))
    return out


def integrate_power_kwh(points: list[tuple[float, float]]) -> float:
    """Trapezoidal integral of (seconds, watts) points, in kWh."""
    joules = sum((p0 + p1) / 2 * (t1 - t0) for (t0, p0), (t1, p1) in zip(points, points[1:]))
    return joules / J_PER_KWH


def gpu_energy_kwh(samples: list[dict], gpu: int) -> tuple[float | None, str]:
    counter = _values(samples, gpu, "energy_mj")
    if len(counter) >= 2:
        return (counter[-1][1] - counter[0][1]) / MJ_PER_KWH, "counter"
    power = _values(samples, gpu, "power_w")
    if len(power) >= 2:
        return integrate_power_kwh(power), "integrated_power"
    return None, "unavailable"


def summarize(samples: list[dict], *, gpus: list[dict], wall_s: float, price_per_gpu_hour: float = 0.0,
              price_per_kwh: float = 0.0) -> dict:
    """The run's figures; GPU keys are None without a GPU, host keys are always present."""
    out: dict = {"samples": len(samples), "wall_seconds": wall_s, "gpu_count": len(gpus), "gpus": gpus}
    host = [s["host"] for s in samples if s.get("host")]
    cpu = [h["cpu_util_pct"] for h in host if h.get("cpu_util_pct") is not None]
    out["cpu_util_mean_pct"] = fmean(cpu) if cpu else None
    out["cpu_util_max_pct"] = max(cpu) if cpu else None
    mem = [h["memory_used_mb"] for h in host if h.get("memory_used_mb") is not None]
    out["host_memory_peak_mb"] = max(mem) if mem else None
    rss = [h["process_rss_mb"] for h in host if h.get("process_rss_mb") is not None]
    out["process_rss_peak_mb"] = max(rss) if rss else None

    per_gpu, util_all, energy_total, sources = [], [], 0.0, set()
    for i, info in enumerate(gpus):
        util = [v for _, v in _values(samples, i, "util_pct")]
        memory = [v for _, v in _values(samples, i, "memory_used_mb")]
        temp = [v for _, v in _values(samples, i, "temperature_c")]
        energy, source = gpu_energy_kwh(samples, i)
        util_all += util
        if energy is not None:
            energy_total += energy
        sources.add(source)
        per_gpu.append({"index": info["index"], "name": info["name"], "util_mean_pct": fmean(util) if util else None,
                        "util_max_pct": max(util) if util else None, "memory_peak_mb": max(memory) if memory else None,
                        "temperature_max_c": max(temp) if temp else None, "energy_kwh": energy,
                        "energy_source": source})
    has_gpu = bool(gpus)
    # The run's draw: power summed over its GPUs at each sample, averaged over the samples.
    totals = [sum(g["power_w"] for g in s["gpus"] if g.get("power_w") is not None)
              for s in samples if s.get("gpus") and any(g.get("power_w") is not None for g in s["gpus"])]
    gpu_hours = wall_s / 3600.0 * len(gpus)
    energy_kwh = energy_total if has_gpu and sources != {"unavailable"} else None
    cost_time = gpu_hours * price_per_gpu_hour
    cost_energy = (energy_kwh or 0.0) * price_per_kwh
    out.update({
        "source": "nvml" if has_gpu else "host",
        "per_gpu": per_gpu,
        "gpu_util_mean_pct": fmean(util_all) if util_all else None,
        "gpu_util_max_pct": max(util_all) if util_all else None,
        "gpu_memory_peak_mb": max((g["memory_peak_mb"] for g in per_gpu if g["memory_peak_mb"] is not None),
                                  default=None),
        "gpu_power_mean_w": fmean(totals) if totals else None,
        "gpu_temperature_max_c": max((g["temperature_max_c"] for g in per_gpu if g["temperature_max_c"] is not None),
                                     default=None),
        "energy_kwh": energy_kwh,
        "energy_source": "+".join(sorted(sources)) if has_gpu else "unavailable",
        "gpu_hours": gpu_hours,
        "price_per_gpu_hour": price_per_gpu_hour,
        "price_per_kwh": price_per_kwh,
        "cost_gpu_hours_usd": cost_time,
        "cost_energy_usd": cost_energy,
        "cost_usd": cost_time + cost_energy,
    })
    return out


# The figures that become numeric asset metadata (the Dagster UI plots them across materializations).
NUMERIC_KEYS = ("wall_seconds", "gpu_count", "gpu_util_mean_pct", "gpu_util_max_pct", "gpu_memory_peak_mb",
                "gpu_power_mean_w", "gpu_temperature_max_c", "energy_kwh", "gpu_hours", "cost_usd",
                "cpu_util_mean_pct", "cpu_util_max_pct", "host_memory_peak_mb", "process_rss_peak_mb")


RENAMED = {"wall_seconds": "telemetry_wall_seconds"}  # assets already report their own wall_seconds


def numeric_figures(summary: dict) -> dict[str, float]:
    return {RENAMED.get(k, k): float(summary[k]) for k in NUMERIC_KEYS if isinstance(summary.get(k), (int, float))
            and not isinstance(summary.get(k), bool)}
