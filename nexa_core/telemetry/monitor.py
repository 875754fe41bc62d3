"""`nexa monitor`: a live terminal view of every GPU (utilisation, memory, power, temperature, processes),
the runbook's gpu_monitor.py as a command. Without a GPU it says so once and shows CPU and memory.

On a terminal each refresh redraws the screen; piped, it prints one block per refresh. Ctrl-C ends it
cleanly (exit 0).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any, TextIO

from nexa_core.telemetry.host import HostReader, host_inventory
from nexa_core.telemetry.nvml import open_gpus

CLEAR = "\x1b[H\x1b[2J"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(static: list[dict], readings: list[dict], processes: list[list[dict]], host: dict) -> str:
    lines = [f"nexa monitor  {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}"]
    if static:
        lines.append(f"{'gpu':<4}{'name':<26}{'util%':>6}{'memory MB':>20}{'power W':>9}{'temp C':>8}")
        for info, r in zip(static, readings):
            mem = f"{_fmt(r['memory_used_mb'], '.0f')}/{info['memory_total_mb']:.0f}"
            lines.append(f"{info['index']:<4}{info['name'][:25]:<26}{_fmt(r['util_pct'], '.0f'):>6}{mem:>20}"
                         f"{_fmt(r['power_w'], '.0f'):>9}{_fmt(r['temperature_c'], '.0f'):>8}")
        rows = [(info["index"], p) for info, procs in zip(static, processes) for p in procs]
        lines.append("processes: " + ("none" if not rows else ""))
        for index, p in rows:
            lines.append(f"  gpu {index}  pid {p['pid']:<8} {p['name'][:30]:<30} {_fmt(p['memory_mb'], '.0f')} MB")
    lines.append(f"cpu {_fmt(host.get('cpu_util_pct'), '.0f')}%   memory {_fmt(host.get('memory_used_mb'), '.0f')} MB "
                 f"in use of {_fmt(host_inventory().get('memory_total_mb'), '.0f')} MB")
    return "\n".join(lines)


def run_monitor(interval_s: float = 5.0, count: int | None = None, nvml: Any = None, out: TextIO = sys.stdout,
                sleep=time.sleep) -> int:
    """Refresh every `interval_s` until Ctrl-C (or `count` refreshes); returns the exit code."""
    gpus, reason = open_gpus(nvml)
    host = HostReader()
    tty = out.isatty()
    if gpus is None:
        print(f"no GPU ({reason}); showing CPU and memory only", file=out, flush=True)
    shown = 0
    try:
        while count is None or shown < count:
            if shown or gpus is None:
                sleep(interval_s if shown else min(interval_s, 0.5))  # a first CPU reading needs an interval
            view = render(gpus.static if gpus else [], gpus.read() if gpus else [],
                          gpus.processes() if gpus else [], host.read())
            out.write((CLEAR if tty else ("\n" if shown else "")) + view + "\n")
            out.flush()
            shown += 1
    except KeyboardInterrupt:
        out.write("\n")
    finally:
        if gpus:
            gpus.close()
    return 0
