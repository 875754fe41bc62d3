"""`FakeNVML`: a stand-in for the pynvml module with the functions NexaCompute calls and scripted readings.

Tests inject it (and the Dagster `FakeNVMLTelemetryResource` uses it) to exercise the GPU path on
machines without a GPU. Each reading walks its own list per device (the last value repeats), so a test
knows exactly which values a sampler saw. `call_cost_s` makes every call sleep, to model real NVML
latency in benchmarks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

MB = 1024 * 1024


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


@dataclass
class FakeGPU:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total_mb: float = 81559.0
    util_pct: list = field(default_factory=lambda: [50])
    memory_used_mb: list = field(default_factory=lambda: [1024.0])
    power_w: list = field(default_factory=lambda: [300.0])
    temperature_c: list = field(default_factory=lambda: [60])
    energy_mj: list | None = None  # None: no counter (NotSupported), energy integrates power
    energy_from_power: bool = False  # counter = power_w[-1] x seconds since creation (a live-looking counter)
    processes: list = field(default_factory=list)  # (pid, used_mb) pairs


class FakeNVML:
    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound

    def __init__(self, gpus: list[FakeGPU] | None = None, *, driver: str = "550.54.15", fail_init: bool = False,
                 call_cost_s: float = 0.0):
        self.gpus = gpus if gpus is not None else [FakeGPU()]
        self.driver, self.fail_init, self.call_cost_s = driver, fail_init, call_cost_s
        self.calls: list[str] = []
        self.initialised = 0
        self._cursor: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._created = time.monotonic()

    @classmethod
    def uniform(cls, count: int = 1, *, energy_counter: bool = True, **kwargs) -> FakeNVML:
        """`count` identical GPUs at 50% and 300 W; the energy counter (if any) advances at 300 W in real time."""
        return cls([FakeGPU(uuid=f"GPU-fake-{i:04d}", energy_from_power=energy_counter) for i in range(count)], **kwargs)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.call_cost_s:
            time.sleep(self.call_cost_s)
        if not self.initialised:
            raise NVMLError("Uninitialized")

    def _next(self, index: int, key: str):
        values = getattr(self.gpus[index], key)
        with self._lock:
            i = self._cursor.get((index, key), 0)
            self._cursor[(index, key)] = i + 1
        return values[min(i, len(values) - 1)]

    # -- the pynvml functions we call ------------------------------------------------------------
    def nvmlInit(self):
        self.calls.append("nvmlInit")
        if self.fail_init:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
        self.initialised += 1

    def nvmlShutdown(self):
        self._call("nvmlShutdown")
        self.initialised -= 1

    def nvmlDeviceGetCount(self):
        self._call("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        self._call("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError("Invalid Argument")
        return index

    def nvmlSystemGetDriverVersion(self):
        self._call("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlDeviceGetName(self, h):
        self._call("nvmlDeviceGetName")
        return self.gpus[h].name

    def nvmlDeviceGetUUID(self, h):
        self._call("nvmlDeviceGetUUID")
        return self.gpus[h].uuid

    def nvmlDeviceGetMemoryInfo(self, h):
        self._call("nvmlDeviceGetMemoryInfo")
        total = int(self.gpus[h].memory_total_mb * MB)
        used = int(self._next(h, "memory_used_mb") * MB)
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, h):
        self._call("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=self._next(h, "util_pct"), memory=0)

    def nvmlDeviceGetPowerUsage(self, h):
        self._call("nvmlDeviceGetPowerUsage")
        return int(round(self._next(h, "power_w") * 1000))  # milliwatts, like NVML

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self._call("nvmlDeviceGetTotalEnergyConsumption")
        gpu = self.gpus[h]
        if gpu.energy_from_power:
            return int((time.monotonic() - self._created) * gpu.power_w[-1] * 1000)
        if gpu.energy_mj is None:
            raise NVMLError_NotSupported("Not Supported")
        return int(self._next(h, "energy_mj"))  # millijoules since the driver loaded

    def nvmlDeviceGetTemperature(self, h, sensor):
        self._call("nvmlDeviceGetTemperature")
        return self._next(h, "temperature_c")

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        self._call("nvmlDeviceGetComputeRunningProcesses")
        return [SimpleNamespace(pid=pid, usedGpuMemory=int(mb * MB)) for pid, mb in self.gpus[h].processes]
