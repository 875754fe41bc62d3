"""NVML access over pynvml (the `nvidia-ml-py` package) or an injected module with the same functions.

`open_gpus()` returns a `GPUs` reader for every GPU visible to this process, or the reason there is
none (library missing, nvmlInit failed, no device, CUDA_VISIBLE_DEVICES hides them all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024


def _text(value: Any) -> str:
    # Old pynvml returned bytes for names and versions; current nvidia-ml-py returns str.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _visible(indices: list[int], uuids: list[str]) -> list[int]:
    """The NVML indices CUDA_VISIBLE_DEVICES lets this process use (NVML itself ignores the variable).
    Entries are indices or (prefixes of) UUIDs; CUDA stops at the first entry it cannot parse."""
    spec = os.environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return indices
    chosen = []
    for entry in (e.strip() for e in spec.split(",")):
        if entry.isdigit() and int(entry) in indices:
            chosen.append(int(entry))
        elif entry.startswith(("GPU-", "MIG-")) and any(u.startswith(entry) for u in uuids):
            chosen.append(next(i for i, u in zip(indices, uuids) if u.startswith(entry)))
        else:
            break
    return list(dict.fromkeys(chosen))


@dataclass
class GPUs:
    """Readers for the visible GPUs; `static` holds what does not change (name, UUID, memory, driver)."""

    nvml: Any
    handles: list[Any]
    static: list[dict]
    energy_counter: list[bool]  # per GPU: False once nvmlDeviceGetTotalEnergyConsumption said NotSupported

    def _try(self, fn, *args):
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None  # one unsupported reading (e.g. power on some boards) must not stop the sample

    def read(self) -> list[dict]:
        out = []
        for info, handle, counter in zip(self.static, self.handles, self.energy_counter):
            util = self._try(self.nvml.nvmlDeviceGetUtilizationRates, handle)
            mem = self._try(self.nvml.nvmlDeviceGetMemoryInfo, handle)
            power = self._try(self.nvml.nvmlDeviceGetPowerUsage, handle)  # milliwatts
            temp = self._try(self.nvml.nvmlDeviceGetTemperature, handle, self.nvml.NVML_TEMPERATURE_GPU)
            reading = {"index": info["index"],
                       "util_pct": None if util is None else float(util.gpu),
                       "memory_used_mb": None if mem is None else mem.used / MB,
                       "power_w": None if power is None else power / 1000.0,
                       "temperature_c": None if temp is None else float(temp)}
            if counter:
                reading["energy_mj"] = self._energy(len(out), handle)
            out.append(reading)
        return out

    def _energy(self, i: int, handle) -> float | None:
        # Volta and newer keep a total-energy counter (millijoules); older boards raise NotSupported,
        # after which this GPU is not asked again and the summary integrates its power samples.
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except self.nvml.NVMLError_NotSupported:
            self.energy_counter[i] = False
        except self.nvml.NVMLError:
            pass
        return None

    def processes(self) -> list[list[dict]]:
        """Per GPU: compute processes with pid, name (from /proc/<pid>/comm, never the command line, which
        can carry secrets) and GPU memory in MB (None where NVML cannot tell, e.g. other containers)."""
        out = []
        for handle in self.handles:
            procs = self._try(self.nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
            rows = []
            for p in procs:
                used = getattr(p, "usedGpuMemory", None)
                rows.append({"pid": int(p.pid), "name": process_name(int(p.pid)),
                             "memory_mb": used / MB if isinstance(used, int) and used < 2**63 else None})
            out.append(rows)
        return out

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def open_gpus(nvml: Any = None) -> tuple[GPUs | None, str | None]:
    """(reader, None) when at least one GPU is visible, else (None, why not)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return None, "pynvml (nvidia-ml-py) is not installed"
    try:
        nvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound / DriverNotLoaded on machines without a driver
        return None, f"NVML is not available ({_text(err) or type(err).__name__})"
    try:
        count = nvml.nvmlDeviceGetCount()
        all_handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in all_handles]
        chosen = _visible(list(range(count)), uuids)
        if not chosen:
            nvml.nvmlShutdown()
            return None, ("no GPU found by NVML" if not count else "CUDA_VISIBLE_DEVICES hides every GPU")
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        handles, static, counters = [], [], []
        for i in chosen:
            h = all_handles[i]
            handles.append(h)
            static.append({"index": i, "name": _text(nvml.nvmlDeviceGetName(h)), "uuid": uuids[i],
                           "memory_total_mb": nvml.nvmlDeviceGetMemoryInfo(h).total / MB, "driver": driver})
            counters.append(True)
    except nvml.NVMLError as err:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
        return None, f"NVML failed while listing GPUs ({_text(err)})"
    return GPUs(nvml, handles, static, counters), None
