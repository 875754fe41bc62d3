"""`RunTracker`: one MLflow run, written through `MlflowClient` (no fluent API, so no process-global active run).

Fail-soft: the first call that fails (server gone, disk full) is reported once as a warning, recorded in
`failure`, and every later call is skipped, so a tracking outage never stops or slows the training it describes.
`NullTracker` is the disabled case with the same methods."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from nexa_core.tracking.settings import MlflowSettings

log = logging.getLogger(__name__)
BATCH = 100  # params per log_batch call (MLflow's limit)
METRIC_BATCH = 1000


class NullTracker:
    run_id: str | None = None
    url: str | None = None
    failure: str | None = None
    settings: MlflowSettings | None = None

    def __bool__(self) -> bool:
        return False

    def log_params(self, params: dict[str, str]) -> None: ...
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None: ...
    def log_metric_points(self, points: list[tuple[str, float, int]]) -> None: ...
    def set_tags(self, tags: dict[str, Any]) -> None: ...
    def log_artifact(self, path: str | Path, folder: str | None = None) -> None: ...
    def finish(self, status: str = "FINISHED") -> None: ...


class RunTracker(NullTracker):
    def __init__(self, client, settings: MlflowSettings, run_id: str, experiment_id: str):
        self.client, self.settings, self.run_id, self.experiment_id = client, settings, run_id, experiment_id
        self.failure: str | None = None

    def __bool__(self) -> bool:
        return True

    @property
    def url(self) -> str | None:
        """The run's page: on the server, or on `make mlflow-ui` (127.0.0.1:5000) for the embedded store."""
        base = "http://127.0.0.1:5000" if self.settings.embedded else self.settings.display_uri
        if not base.startswith("http"):
            return None
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def call(self, what: str, fn, *args, **kwargs):
        """Run one MLflow call; after the first failure, none."""
        if self.failure:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # any backend error: tracking must never end the training
            self.failure = f"{what}: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            log.warning("MLflow tracking at %s stopped (%s); the run goes on without it and its local record "
                        "(run.json, logs, metrics.json) is complete", self.settings.display_uri, self.failure)
            return None

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), BATCH):
            self.call("log params", self.client.log_batch, self.run_id, params=items[i:i + BATCH])

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        for i in range(0, len(items), METRIC_BATCH):
            self.call("log metrics", self.client.log_batch, self.run_id, metrics=items[i:i + METRIC_BATCH])

    def log_metric_points(self, points: list[tuple[str, float, int]]) -> None:
        """Step metrics buffered by the training callback: (key, value, step)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, s) for k, v, s in points]
        for i in range(0, len(items), METRIC_BATCH):
            self.call("log step metrics", self.client.log_batch, self.run_id, metrics=items[i:i + METRIC_BATCH])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        self.call("set tags", self.client.log_batch, self.run_id, tags=items)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        if Path(path).exists():
            self.call(f"log artifact {Path(path).name}", self.client.log_artifact, self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.call("end run", self.client.set_terminated, self.run_id, status)
