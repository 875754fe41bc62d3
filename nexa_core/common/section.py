"""The base of every config section: strict pydantic models shared by nexa_core.config and its split-off modules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # Unknown keys are errors: a typo such as `lrr` must not be silently ignored.
    # inf/nan are never meant (`training.epochs=.inf` would pass `gt=0`, then overflow inside the trainer).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
