"""The recipe a study was started with, kept in the study database (user attributes `recipe` and
`dataset_version`), so a trial trains what the study is about whichever process or machine runs it, and every
trial of a study sees the same dataset version (its validation split is what the trials' values compare on).

What the study is about (data, model, training, evaluation, the tune section) comes from the recipe recorded;
where things live (storage roots, tracking server, the study database) is the running process's own: paths and
endpoints differ by host, and the database never holds a tracking URI or a password."""

from __future__ import annotations

from typing import Any

import optuna

from nexa_core.common.errors import NexaError
from nexa_core.config import NexaConfig

LOCAL = ("storage", "tracking")  # sections that belong to the process running a trial, not to the study


def record_start(study: optuna.Study, cfg: NexaConfig, dataset_version: str) -> None:
    known = study.user_attrs.get("dataset_version")
    if known is not None and known != dataset_version:
        raise NexaError(f"tune.study {study.study_name}: started on dataset version {known}, but the data now gives "
                        f"{dataset_version}; a study's trials must share one validation split, so pick another study "
                        "name (tune.study)")
    recipe = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in LOCAL}
    recipe["tune"].update(storage=None, study=study.study_name)  # the name is the study's even when it defaulted
    study.set_user_attr("recipe", recipe)
    study.set_user_attr("dataset_version", dataset_version)


def study_recipe(study: optuna.Study, here: NexaConfig) -> dict[str, Any]:
    """The recorded recipe with this process's storage roots, tracking and study database."""
    recipe = study.user_attrs.get("recipe")
    if recipe is None:
        raise NexaError(f"tune.study {study.study_name}: no recipe recorded in the study database (it was started "
                        "by an older nexa tune); start a new study (tune.study)")
    local = here.model_dump(mode="json")
    return {**recipe, **{k: local[k] for k in LOCAL}, "tune": {**recipe["tune"], "storage": local["tune"]["storage"]}}
