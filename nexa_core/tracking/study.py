"""The study run: one MLflow parent run per hyperparameter study, found again by its tag, under which every trial's
training run is nested (`mlflow.parentRunId`), so the UI shows a study's trials together (as distillation.py does
for an input set)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nexa_core.config import NexaConfig
from nexa_core.tracking.runs import client_for, experiment_id
from nexa_core.tracking.scope import PARENT_TAG, scope_tags, tracking_scope
from nexa_core.tracking.settings import mlflow_settings
from nexa_core.tracking.tracker import RunTracker

KEY_TAG = "nexa.study"


def study_run(cfg: NexaConfig, study: str) -> str | None:
    """The parent run's id (created on first use); None when tracking is off or the server failed (reported once)."""
    settings = mlflow_settings(cfg)
    if settings is None:
        return None
    client = client_for(settings)
    opener = RunTracker(client, settings, "", "")

    def find_or_create() -> str:
        exp = experiment_id(client, settings)
        found = client.search_runs([exp], filter_string=f"tags.`{KEY_TAG}` = '{study}'", max_results=1)
        if found:
            return found[0].info.run_id
        run = client.create_run(exp, run_name=study, tags={**scope_tags(), KEY_TAG: study, "nexa.kind": "study"})
        client.set_terminated(run.info.run_id, "FINISHED")  # a grouping run: its children carry the work
        return run.info.run_id

    return opener.call("open the study run", find_or_create)


@contextmanager
def nested_in_study(cfg: NexaConfig, study: str) -> Iterator[str | None]:
    """Runs opened inside are children of the study's run."""
    parent = study_run(cfg, study)
    with tracking_scope(**{PARENT_TAG: parent, "nexa.study": study}):
        yield parent
