"""Mirror the core pydantic config as Dagster `Config` classes, so the launchpad shows the same schema.

`nexa_core` may not import dagster, so its models cannot subclass `dagster.Config`; instead each model
is copied field by field (types and defaults) onto a `Config` subclass. Value checks beyond types
(ranges, run-name rules) run when the resource converts back with `NexaConfig.model_validate`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import dagster as dg
from pydantic import BaseModel, create_model


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@cache
def dagster_config_class(model: type[BaseModel]) -> type[dg.Config]:
    fields = {}
    for name, info in model.model_fields.items():
        annotation = dagster_config_class(info.annotation) if _is_model(info.annotation) else info.annotation
        if info.is_required():
            fields[name] = (annotation, ...)
            continue
        default = info.get_default(call_default_factory=True)
        fields[name] = (annotation, to_config(annotation, default.model_dump()) if _is_model(type(default)) else default)
    return create_model(model.__name__, __base__=dg.Config, __doc__=model.__doc__, **fields)


def to_config(cls: type[dg.Config], values: dict) -> dg.Config:
    """Build a mirrored Config instance from plain (e.g. YAML-loaded) values, nested sections included."""
    kwargs = {}
    for name, value in values.items():
        annotation = cls.model_fields[name].annotation
        kwargs[name] = to_config(annotation, value) if isinstance(value, dict) and _is_model(annotation) else value
    return cls(**kwargs)
