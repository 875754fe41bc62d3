"""Mirror the core pydantic config as Dagster `Config` classes, so the launchpad shows the same schema.

`nexa_core` may not import dagster, so its models cannot subclass `dagster.Config`; instead each model
is copied field by field onto a `Config` subclass. Given a loaded recipe, the copy takes the recipe's
values as its defaults: the launchpad opens pre-filled and a run config may override any single key.
Value checks beyond types (ranges, run-name rules) run when the resource converts back to NexaConfig.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import dagster as dg
from pydantic import BaseModel, create_model


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _list_of_model(annotation: Any) -> type[BaseModel] | None:
    """The item model of `list[Model]` (tune.space), else None."""
    args = typing.get_args(annotation)
    return args[0] if typing.get_origin(annotation) is list and len(args) == 1 and _is_model(args[0]) else None


def dagster_config_class(model: type[BaseModel], defaults: dict[str, Any] | None = None) -> type[dg.Config]:
    """A `dg.Config` twin of `model`; `defaults` (a full dump of an instance) become its field defaults."""
    fields = {}
    for name, info in model.model_fields.items():
        if _is_model(info.annotation):
            twin = dagster_config_class(info.annotation, (defaults or {}).get(name) or _dump_default(info))
            fields[name] = (twin, twin())
        elif item := _list_of_model(info.annotation):
            # A list of core models becomes a list of their Config twins (Dagster types pydantic models it knows).
            values = (defaults or {}).get(name, info.get_default(call_default_factory=True))
            values = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in values]
            fields[name] = (list[dagster_config_class(item)], values)
        elif _mixed_union(info.annotation):
            # Dagster config has no `int | "auto"`: the launchpad takes text ("2", "auto") and the core model parses it.
            value = defaults[name] if defaults is not None and name in defaults else info.get_default()
            fields[name] = (typing.Optional[str], None if value is None else str(value))
        elif defaults is not None and name in defaults:
            fields[name] = (info.annotation, defaults[name])
        elif info.is_required():
            fields[name] = (info.annotation, ...)
        else:
            fields[name] = (info.annotation, info.get_default(call_default_factory=True))
    return create_model(model.__name__, __base__=dg.Config, __doc__=model.__doc__, **fields)


def _mixed_union(annotation: Any) -> bool:
    """A union of several kinds besides None (`int | Literal["auto"]`), which Dagster config cannot type."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    flat = []
    for arg in typing.get_args(annotation):
        flat.extend(typing.get_args(arg) if typing.get_origin(arg) in (typing.Union, types.UnionType) else [arg])
    return len([a for a in flat if a is not type(None)]) > 1


def _dump_default(info) -> dict[str, Any]:
    default = info.get_default(call_default_factory=True)
    return default.model_dump(mode="json") if isinstance(default, BaseModel) else {}
