"""The distillation run: one MLflow parent run per (teacher outputs version, input set), found again by its tag,
under which that input set's teacher-output steps and students are nested (`mlflow.parentRunId`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nexa_core.config import NexaConfig
from nexa_core.tracking.runs import client_for, experiment_id
from nexa_core.tracking.scope import PARENT_TAG, scope_tags, tracking_scope
from nexa_core.tracking.settings import mlflow_settings
from nexa_core.tracking.tracker import RunTracker

KEY_TAG = "nexa.distillation"


def distillation_run(cfg: NexaConfig, teacher_version: str, inputs_version: str) -> str | None:
    """The parent run's id (created on first use); None when tracking is off or the server failed (reported once)."""
    settings = mlflow_settings(cfg)
    if settings is None:
        return None
    client = client_for(settings)
    opener = RunTracker(client, settings, "", "")
    key = f"{teacher_version}/{inputs_version}"

    def find_or_create() -> str:
        exp = experiment_id(client, settings)
        found = client.search_runs([exp], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)
        if found:
            return found[0].info.run_id
        run = client.create_run(exp, run_name=f"distill-{inputs_version}", tags={
            **scope_tags(), KEY_TAG: key, "nexa.kind": "distillation", "nexa.teacher_version": teacher_version,
            "nexa.inputs_version": inputs_version})
        client.set_terminated(run.info.run_id, "FINISHED")  # a grouping run: its children carry the work
        return run.info.run_id

    return opener.call("open the distillation run", find_or_create)


@contextmanager
def nested_in_distillation(cfg: NexaConfig, teacher_version: str, inputs_version: str) -> Iterator[str | None]:
    """Runs opened inside are children of the distillation run of this teacher version and input set."""
    parent = distillation_run(cfg, teacher_version, inputs_version)
    with tracking_scope(**{PARENT_TAG: parent}):
        yield parent
