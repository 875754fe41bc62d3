"""CPU and memory readings from /proc (Linux), used beside GPU readings and instead of them without a GPU.

psutil would do the same; /proc is three small files and keeps the dependency list as the brief sets it.
Elsewhere (no /proc) the load average and the process's peak RSS from `resource` stand in.
"""

from __future__ import annotations

import os
from pathlib import Path

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies over all cores since boot."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _meminfo() -> dict[str, float]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            out[key] = float(rest.split()[0]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return out


def _rss_mb() -> float | None:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE / MB
    except (OSError, ValueError, IndexError):
        try:
            import resource
            import sys

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak / MB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux
        except (ImportError, OSError):
            return None


class HostReader:
    """CPU utilisation between consecutive reads (all cores, %), memory in use, this process's RSS."""

    def __init__(self):
        self._last = _cpu_times()

    def read(self) -> dict:
        now = _cpu_times()
        cpu = None
        if now and self._last and now[1] > self._last[1]:
            cpu = 100.0 * (now[0] - self._last[0]) / (now[1] - self._last[1])
        elif now is None and hasattr(os, "getloadavg"):
            cpu = min(100.0, 100.0 * os.getloadavg()[0] / (os.cpu_count() or 1))
        self._last = now or self._last
        mem = _meminfo()
        total = mem.get("MemTotal")
        used = total - mem.get("MemAvailable", mem.get("MemFree", 0.0)) if total else None
        return {"cpu_util_pct": cpu, "memory_used_mb": None if used is None else used / MB,
                "process_rss_mb": _rss_mb()}


def host_inventory() -> dict:
    import platform

    mem = _meminfo()
    return {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model() or platform.processor() or platform.machine(),
            "memory_total_mb": mem["MemTotal"] / MB if "MemTotal" in mem else None,
            "platform": platform.platform(), "machine": platform.machine()}


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
