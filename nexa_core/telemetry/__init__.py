"""GPU and host telemetry: NVML sampling, summaries and cost, the environment fingerprint, the live monitor.

Plain Python (no dagster). Everything that talks to NVML takes an injectable `nvml` module, so tests
pass `FakeNVML` and a machine without a GPU falls back to CPU and memory readings.
"""

from nexa_core.telemetry.sampler import TelemetrySampler
from nexa_core.telemetry.session import Measurement, measure
from nexa_core.telemetry.summary import summarize

__all__ = ["Measurement", "TelemetrySampler", "measure", "summarize"]
