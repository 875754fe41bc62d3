"""The model registry: a released run's model logged as an MLflow transformers model and registered under
`tracking.mlflow.registered_model`; the aliases `champion` (what deploy/current_model serves) and `previous` (the
release it replaced) follow every deploy and rollback, so `models:/<name>@champion` serves the deployed model.

MLflow's fluent `log_model` needs an active run and a process-wide URI; both are set for the call and restored."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nexa_core.tracking.runs import attach, read_tracking, write_tracking
from nexa_core.tracking.settings import ENV_URI, MANAGED_TAG
from nexa_core.tracking.tracker import RunTracker

log = logging.getLogger(__name__)
CHAMPION, PREVIOUS = "champion", "previous"
# The serving environment pyfunc records: what this model needs, not every package of the training node.
REQUIREMENTS = ("torch", "transformers", "tokenizers", "safetensors", "accelerate")


def log_and_register(run_dir: Path, final_dir: Path) -> str | None:
    """Log final/ to the run's MLflow run and register it; returns the registry version (None: not tracked, model
    logging off, or a failure already reported)."""
    tracker = attach(run_dir)
    if not isinstance(tracker, RunTracker) or not tracker.settings.log_model:
        return None
    done = read_tracking(run_dir) or {}
    if done.get("model_version"):  # a manifest written again (retry) does not register a second copy
        return done["model_version"]
    version = tracker.call("log model", _log_model, tracker, Path(final_dir))
    if version:
        write_tracking(run_dir, tracker, model_version=str(version))
    return version


def _log_model(tracker: RunTracker, final_dir: Path) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException
    from transformers import pipeline

    name, client = tracker.settings.registered_model, tracker.client
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={MANAGED_TAG: "true"}, description="Deployed by NexaCompute: "
                                       "@champion is deploy/current_model")
    pipe = pipeline("text-classification", model=str(final_dir), tokenizer=str(final_dir), device="cpu")
    with _process_uri(tracker.settings.uri), mlflow.start_run(run_id=tracker.run_id):
        info = mlflow.transformers.log_model(transformers_model=pipe, name="model", task="text-classification",
                                             pip_requirements=list(REQUIREMENTS), registered_model_name=name)
    return str(info.registered_model_version)


@contextmanager
def _process_uri(uri: str) -> Iterator[None]:
    """MLflow's process-wide URIs (and the env vars `set_tracking_uri` exports) set for the call, then put back
    exactly as they were: unset stays unset, so later code still follows MLFLOW_TRACKING_URI."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    names = (ENV_URI, "MLFLOW_REGISTRY_URI")
    saved_env = {name: os.environ.get(name) for name in names}
    saved = tracking_state._tracking_uri, getattr(registry_state, "_registry_uri", None)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sync_aliases(champion_dir: Path, previous_dir: Path | None) -> str:
    """Point `champion` at the deployed run's version and `previous` at the replaced one's (same registry and name
    only). A deployed run with no registered version removes `champion`, so the alias never serves a model other
    than the deployed one. Returns what was done, for the deploy's log."""
    champion = read_tracking(champion_dir) or {}
    tracker = attach(champion_dir)
    if not isinstance(tracker, RunTracker) or not champion.get("registered_model"):
        return "registry: the deployed run was not tracked in MLflow; no alias moved"
    name, client = champion["registered_model"], tracker.client
    if champion.get("model_version"):
        tracker.call("move champion", client.set_registered_model_alias, name, CHAMPION, champion["model_version"])
    else:
        tracker.call("drop champion", _delete_alias, client, name, CHAMPION)
    previous = read_tracking(previous_dir) if previous_dir else None
    same = previous and previous.get("uri") == champion.get("uri") and previous.get("registered_model") == name
    if same and previous.get("model_version"):
        tracker.call("move previous", client.set_registered_model_alias, name, PREVIOUS, previous["model_version"])
    else:
        tracker.call("drop previous", _delete_alias, client, name, PREVIOUS)
    if tracker.failure:
        return f"registry: aliases of {name} not moved ({tracker.failure})"
    return (f"registry: {name}@{CHAMPION} -> version {champion.get('model_version') or 'none (not registered)'}, "
            f"@{PREVIOUS} -> version {(previous or {}).get('model_version') if same else 'none'}")


def _delete_alias(client, name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
