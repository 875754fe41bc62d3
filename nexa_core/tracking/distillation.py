"""The distillation run: one MLflow parent run per (teacher outputs version, input set), under which that input
set's teacher-output steps and students are nested (a grouping run, groups.py)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from nexa_core.config import NexaConfig
from nexa_core.tracking.groups import nested_in

KEY_TAG = "nexa.distillation"


def nested_in_distillation(cfg: NexaConfig, teacher_version: str,
                           inputs_version: str) -> AbstractContextManager[str | None]:
    """Runs opened inside are children of the distillation run of this teacher version and input set."""
    return nested_in(cfg, KEY_TAG, f"{teacher_version}/{inputs_version}", f"distill-{inputs_version}",
                     {"nexa.kind": "distillation", "nexa.teacher_version": teacher_version,
                      "nexa.inputs_version": inputs_version})
