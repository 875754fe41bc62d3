"""What the tuning steps hand each other: a started study's plan and a trial's outcome, and the slot names. Plain
dataclasses without Optuna or the ML stack, so the Dagster code location can type its assets with them and still
load without torch (tests/test_architecture.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nexa_core.common.errors import NexaError

STUDY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # a study's name also names its folder
SLOT_RE = re.compile(r"^(?P<study>.+)-trial-(?P<index>\d{3,})$")


def slot_key(study: str, index: int) -> str:
    """The name of a study's trial slot: a partition of `hpo_trials`."""
    return f"{study}-trial-{index:03d}"


def slot_study(key: str) -> str:
    """The study a slot belongs to; a key that is not a slot is one line."""
    match = SLOT_RE.fullmatch(key)
    if match is None or not STUDY_NAME_RE.fullmatch(match["study"]):
        raise NexaError(f"hpo_trials partition {key!r}: not a trial slot (<study>-trial-NNN); slots are registered "
                        "by materializing hpo_study")
    return match["study"]


@dataclass(frozen=True)
class StudyPlan:
    """What starting a study hands to its trials and to the release of its best model."""

    study: str
    storage: str  # the database URL without its password
    metric: str
    sampler: str
    pruner: str
    dataset_version: str
    space: tuple[dict[str, Any], ...]
    slots: tuple[str, ...]

    def metadata(self) -> dict[str, Any]:
        return {"study": self.study, "study_storage": self.storage, "metric": f"validation {self.metric}",
                "sampler": self.sampler, "pruner": self.pruner, "dataset_version": self.dataset_version,
                "space": list(self.space), "trial_slots": len(self.slots)}


@dataclass
class TrialOutcome:
    number: int
    params: dict[str, Any]
    state: str  # complete, pruned, failed
    value: float | None = None
    run_id: str | None = None
    pruned_at: int | None = None
    seconds: float = 0.0
    steps: int = 0
    test: dict[str, float] = field(default_factory=dict)
