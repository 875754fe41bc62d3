"""A background thread that samples every visible GPU (NVML) and the host at a fixed interval.

`start()` takes the pre snapshot, the thread samples every `interval_s`, `stop()` takes the post
snapshot and returns the summary. Samples stay in memory and are appended to `series_path` (JSONL)
as soon as the run folder above it exists, so a run folder made after sampling started still gets the
whole series.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nexa_core.telemetry.host import HostReader
from nexa_core.telemetry.notice import say_once
from nexa_core.telemetry.nvml import GPUs, open_gpus
from nexa_core.telemetry.summary import summarize

log = logging.getLogger("nexa_core.telemetry")


class TelemetrySampler:
    def __init__(self, interval_s: float = 5.0, *, nvml: Any = None, series_path: Path | None = None,
                 price_per_gpu_hour: float = 0.0, price_per_kwh: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        self.interval_s = float(interval_s)
        self.nvml = nvml
        self.series_path = Path(series_path) if series_path else None
        self.prices = (price_per_gpu_hour, price_per_kwh)
        self.clock = clock
        self.samples: list[dict] = []
        self.gpus: GPUs | None = None
        self.no_gpu_reason: str | None = None
        self.pre: dict | None = None
        self.post: dict | None = None
        self.summary: dict | None = None
        self._written = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._host = HostReader()

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> TelemetrySampler:
        self.gpus, self.no_gpu_reason = open_gpus(self.nvml)
        if self.gpus is None:
            say_once(f"telemetry: no GPU ({self.no_gpu_reason}); reporting CPU and memory instead")
        self._t0 = self.clock()
        self._started_at = time.time()
        self.pre = self.sample_now()
        self._thread = threading.Thread(target=self._loop, name="nexa-telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        if self.summary is not None:
            return self.summary
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=max(5.0, 2 * self.interval_s))
        self.post = self.sample_now()
        wall = self.clock() - self._t0
        self.summary = summarize(self.samples, gpus=self.gpus.static if self.gpus else [], wall_s=wall,
                                 price_per_gpu_hour=self.prices[0], price_per_kwh=self.prices[1])
        self.summary["no_gpu_reason"] = self.no_gpu_reason
        self.summary["interval_s"] = self.interval_s
        self.summary["started_at"] = self._started_at
        if self.gpus:
            self.gpus.close()
        self.flush()
        return self.summary

    def __enter__(self) -> TelemetrySampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- sampling ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample_now()
            except Exception as err:  # a telemetry fault must never break the run it watches
                say_once(f"telemetry: sampling failed ({type(err).__name__}: {err}); continuing without it")

    def sample_now(self) -> dict:
        sample = {"t": round(self.clock() - self._t0, 6), "host": self._host.read()}
        if self.gpus:
            sample["gpus"] = self.gpus.read()
        with self._lock:
            self.samples.append(sample)
        self.flush()
        return sample

    def flush(self) -> None:
        """Append unwritten samples to the series file once the run folder holding it exists (one stat)."""
        if not self.series_path:
            return
        folder = self.series_path.parent
        if not folder.is_dir():
            if not folder.parent.is_dir():
                return
            folder.mkdir(exist_ok=True)
        with self._lock:
            pending = self.samples[self._written:]
            self._written = len(self.samples)
        if pending:
            with self.series_path.open("a") as fh:
                fh.writelines(json.dumps(s) + "\n" for s in pending)

    def move_series(self, path: Path) -> None:
        """Write the whole series to `path` from now on (the folder became known only after sampling began)."""
        path = Path(path)
        path.unlink(missing_ok=True)
        with self._lock:
            self.series_path, self._written = path, 0
        self.flush()

    def processes(self) -> list[list[dict]]:
        return self.gpus.processes() if self.gpus else []
