"""NVMLTelemetryResource: GPU telemetry (pynvml) around an asset's work (its figures as metadata:
nexa_dagster/metadata.py `telemetry_values`).

Unset fields fall back to the recipe's `telemetry` section (so YAML recipes, `--override` and the
launchpad's `resources.nexa.config.telemetry` all set them); a field set on the resource wins.
`FakeNVMLTelemetryResource` injects `FakeNVML`, for tests and for trying the GPU path without a GPU.
"""

from typing import Any, Optional

import dagster as dg

from nexa_core.config import TelemetryConfig


class NVMLTelemetryResource(dg.ConfigurableResource):
    enabled: Optional[bool] = None  # None: the recipe's telemetry.enabled
    interval_s: Optional[float] = None  # sampling period in seconds
    price_per_gpu_hour: Optional[float] = None  # $ per GPU-hour
    price_per_kwh: Optional[float] = None  # $ per kWh of GPU energy

    def settings(self, recipe: TelemetryConfig | None = None) -> TelemetryConfig:
        base = (recipe or TelemetryConfig()).model_dump()
        override = {k: getattr(self, k) for k in ("enabled", "interval_s", "price_per_gpu_hour", "price_per_kwh")
                    if getattr(self, k) is not None}
        return TelemetryConfig.model_validate({**base, **override})

    def nvml_module(self) -> Any:
        return None  # the real pynvml (nvidia-ml-py), loaded when sampling starts

    def measure(self, recipe: TelemetryConfig | None, out_dir, stage: str):
        """A context manager: `with telemetry.measure(cfg.telemetry, run_dir / "telemetry", "train") as m:`."""
        from nexa_core.telemetry import measure

        return measure(self.settings(recipe), out_dir, stage, nvml=self.nvml_module())


class FakeNVMLTelemetryResource(NVMLTelemetryResource):
    """The same resource over `FakeNVML`: `gpus` identical H100s at the given readings."""

    gpus: int = 1
    util_pct: float = 50.0
    power_w: float = 300.0
    memory_used_mb: float = 1024.0
    energy_counter: bool = True

    def nvml_module(self) -> Any:
        from nexa_core.telemetry.fake import FakeGPU, FakeNVML

        return FakeNVML([FakeGPU(uuid=f"GPU-fake-{i:04d}", util_pct=[self.util_pct], power_w=[self.power_w],
                                 memory_used_mb=[self.memory_used_mb],
                                 energy_from_power=self.energy_counter) for i in range(self.gpus)])

