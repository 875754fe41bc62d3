"""Opening MLflow runs: a training run's (kept in `<run_dir>/tracking.json`, so a resumed run, its evaluation, its
manifest and its deploy all log to the same MLflow run, from any process), and short step runs (teacher outputs)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nexa_core.common.atomic import atomic_write_json
from nexa_core.config import NexaConfig
from nexa_core.tracking.params import strip_userinfo
from nexa_core.tracking.scope import scope_tags
from nexa_core.tracking.settings import ENV_URI, MlflowSettings, mlflow_settings
from nexa_core.tracking.tracker import NullTracker, RunTracker

log = logging.getLogger(__name__)
RECORD = "tracking.json"


def client_for(settings: MlflowSettings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.uri, registry_uri=settings.uri)


def experiment_id(client, settings: MlflowSettings) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(settings.experiment)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(settings.experiment, artifact_location=settings.artifact_location)
    except MlflowException:  # created by a concurrent run a moment ago
        return client.get_experiment_by_name(settings.experiment).experiment_id


def start_run(cfg: NexaConfig, name: str, *, tags: dict[str, Any], params: dict[str, str] | None = None,
              folder: Path | None = None) -> NullTracker:
    """A new MLflow run (or, with `folder`, the one its tracking.json names, reopened: a resumed training run)."""
    settings = mlflow_settings(cfg)
    if settings is None:
        return NullTracker()
    record = read_tracking(folder) if folder else None
    client = client_for(settings)
    if record and record.get("uri") == settings.display_uri and record.get("run_id"):
        tracker = RunTracker(client, settings, record["run_id"], record["experiment_id"])
        tracker.call("reopen run", client.update_run, tracker.run_id, status="RUNNING")
        return tracker
    opener = RunTracker(client, settings, "", "")  # fail-soft creation: a server gone since the preflight is a warning
    exp = opener.call("open experiment", experiment_id, client, settings)
    run = opener.call("create run", client.create_run, exp, run_name=name,
                      tags={**scope_tags(), **{k: str(v) for k, v in tags.items() if v is not None}}) if exp else None
    if run is None:
        return NullTracker()
    tracker = RunTracker(client, settings, run.info.run_id, exp)
    if params:
        tracker.log_params(params)
    if folder:
        write_tracking(folder, tracker)
    return tracker


def attach(folder: Path) -> NullTracker:
    """The MLflow run a training run's tracking.json names (NullTracker if it was not tracked, or its tracking failed)."""
    import os

    record = read_tracking(folder)
    # A run whose tracking failed stays as MLflow has it: its later steps neither retry nor warn again.
    if not record or not record.get("run_id") or record.get("failure"):
        return NullTracker()
    uri = record["uri"]
    env = os.environ.get(ENV_URI, "").rstrip("/")
    if env and strip_userinfo(env) == uri:
        uri = env  # the same server, with the credentials the environment gives it
    settings = MlflowSettings(uri, "tracking.json", record.get("experiment", ""), record.get("registered_model", ""),
                              bool(record.get("log_model")), record.get("artifact_location"))
    return RunTracker(client_for(settings), settings, record["run_id"], record["experiment_id"])


@contextmanager
def step_run(cfg: NexaConfig, name: str, *, tags: dict[str, Any], params: dict[str, str]) -> Iterator[NullTracker]:
    """A short run around one step (FINISHED, or FAILED if the step raises)."""
    tracker = start_run(cfg, name, tags=tags, params=params)
    try:
        yield tracker
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish("FINISHED")


def read_tracking(folder: Path | None) -> dict | None:
    path = Path(folder) / RECORD if folder else None
    try:
        return json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None


def write_tracking(folder: Path, tracker: RunTracker, **extra: Any) -> None:
    """What later steps need to log to this run again; the URI without credentials."""
    s = tracker.settings
    record = {**(read_tracking(folder) or {}), "uri": s.display_uri, "experiment": s.experiment,
              "experiment_id": tracker.experiment_id, "run_id": tracker.run_id, "url": tracker.url,
              "registered_model": s.registered_model, "log_model": s.log_model,
              "artifact_location": s.artifact_location, **extra}
    atomic_write_json(Path(folder) / RECORD, record)


def note_failure(folder: Path, tracker: NullTracker) -> None:
    """Keep a logging failure beside the run: the local record says what MLflow is missing."""
    if tracker and tracker.failure:
        write_tracking(folder, tracker, failure=tracker.failure)
