"""The study run: one MLflow parent run per hyperparameter study, under which every trial's training run is nested
(a grouping run, groups.py), so the UI shows a study's trials together."""

from __future__ import annotations

from contextlib import AbstractContextManager

from nexa_core.config import NexaConfig
from nexa_core.tracking.groups import nested_in

KEY_TAG = "nexa.study"


def nested_in_study(cfg: NexaConfig, study: str) -> AbstractContextManager[str | None]:
    """Runs opened inside are children of the study's run (and tagged with the study)."""
    return nested_in(cfg, KEY_TAG, study, study, {"nexa.kind": "study"}, child_tags={KEY_TAG: study})
