"""`measure()`: sample telemetry around one step (train, evaluate, teacher outputs) and file the result.

    with measure(cfg.telemetry, run_dir / "telemetry", "train") as m:
        train(...)
    m.summary   # figures for metadata; run_dir/telemetry/train.json and train.jsonl on disk

The folder may not exist yet when sampling starts (a run folder is made only once the config is
accepted): the series is written as soon as it appears, and the summary when the step ends. Pass
`out_dir=None` and call `save()` when the folder is only known afterwards (e.g. a claimed run id).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nexa_core.common.atomic import atomic_write_json
from nexa_core.config import TelemetryConfig
from nexa_core.telemetry.sampler import TelemetrySampler
from nexa_core.telemetry.secrets import redact


class Measurement:
    def __init__(self, cfg: TelemetryConfig, out_dir: Path | None, stage: str, nvml: Any = None):
        self.cfg, self.stage = cfg, stage
        self.out_dir = Path(out_dir) if out_dir else None
        self.summary: dict | None = None
        self.extra: dict = {}  # e.g. the environment fingerprint of a training run
        self.sampler = (TelemetrySampler(cfg.interval_s, nvml=nvml, series_path=self._series(self.out_dir),
                                         price_per_gpu_hour=cfg.price_per_gpu_hour, price_per_kwh=cfg.price_per_kwh)
                        if cfg.enabled else None)

    def _series(self, folder: Path | None) -> Path | None:
        return folder / f"{self.stage}.jsonl" if folder else None

    def start(self) -> Measurement:
        if self.sampler:
            self.sampler.start()
        return self

    def stop(self, status: str = "complete") -> dict | None:
        if not self.sampler:
            return None
        self.summary = {**self.sampler.stop(), "stage": self.stage, "status": status, **self.extra}
        if self.out_dir and self.out_dir.parent.is_dir():
            self.save(self.out_dir)
        return self.summary

    def save(self, out_dir: Path) -> Path | None:
        """Write `<stage>.json` (summary, pre/post snapshots) and, if not streamed there, `<stage>.jsonl`."""
        if not self.sampler or self.summary is None:
            return None
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.sampler.series_path is None or self.sampler.series_path.parent != out_dir:
            self.sampler.move_series(self._series(out_dir))
        else:
            self.sampler.flush()
        fingerprint = _run_fingerprint(out_dir.parent)
        if fingerprint:  # a run's telemetry names the environment it ran in, like its run.json
            self.summary["environment_fingerprint"] = fingerprint
        doc = {**self.summary, "pre": self.sampler.pre, "post": self.sampler.post,
               "series": str(self.sampler.series_path)}
        return atomic_write_json(out_dir / f"{self.stage}.json", redact(doc))


def _run_fingerprint(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("environment_fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


@contextmanager
def measure(cfg: TelemetryConfig | None, out_dir: Path | None, stage: str, nvml: Any = None) -> Iterator[Measurement]:
    m = Measurement(cfg or TelemetryConfig(), out_dir, stage, nvml).start()
    try:
        yield m
    except BaseException:
        m.stop(status="failed")  # a failed step still leaves its telemetry (how far it got, what it cost)
        raise
    m.stop()
