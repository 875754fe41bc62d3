"""Grouping runs: one MLflow parent run per key (a distillation's teacher version and input set, a tuning study),
found again by its tag and created on first use, under which the runs opened inside `nested_in` are children
(`mlflow.parentRunId`), so the UI shows them together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nexa_core.config import NexaConfig
from nexa_core.tracking.runs import client_for, experiment_id
from nexa_core.tracking.scope import PARENT_TAG, scope_tags, tracking_scope
from nexa_core.tracking.settings import mlflow_settings
from nexa_core.tracking.tracker import RunTracker


def grouping_run(cfg: NexaConfig, key_tag: str, key: str, name: str, tags: dict[str, str]) -> str | None:
    """The parent run's id; None when tracking is off or the server failed (reported once)."""
    settings = mlflow_settings(cfg)
    if settings is None:
        return None
    client = client_for(settings)

    def find_or_create() -> str:
        exp = experiment_id(client, settings)
        found = client.search_runs([exp], filter_string=f"tags.`{key_tag}` = '{key}'", max_results=1)
        if found:
            return found[0].info.run_id
        run = client.create_run(exp, run_name=name, tags={**scope_tags(), key_tag: key, **tags})
        client.set_terminated(run.info.run_id, "FINISHED")  # a grouping run: its children carry the work
        return run.info.run_id

    return RunTracker(client, settings, "", "").call(f"open the grouping run {name}", find_or_create)


@contextmanager
def nested_in(cfg: NexaConfig, key_tag: str, key: str, name: str, tags: dict[str, str],
              child_tags: dict[str, str] | None = None) -> Iterator[str | None]:
    """Runs opened inside are children of the grouping run of `key` (and carry `child_tags`)."""
    parent = grouping_run(cfg, key_tag, key, name, tags)
    with tracking_scope(**{PARENT_TAG: parent, **(child_tags or {})}):
        yield parent
