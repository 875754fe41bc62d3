"""The pipeline recipe as a resource: one config shared by every asset, editable in the launchpad.

Its defaults come from a YAML recipe (NEXA_CONFIG, else configs/default.yaml), so the launchpad
opens pre-filled with the recipe, and `dagster job execute -c run.yaml` can override any single key
under `resources.nexa.config` (e.g. `training: {epochs: 1}`).
"""

import os
from dataclasses import asdict
from pathlib import Path

import dagster as dg
from pydantic import create_model

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import (
    DataConfig,
    DistillConfig,
    EvaluationConfig,
    ModelConfig,
    NexaConfig,
    StorageConfig,
    TelemetryConfig,
    TrackingConfig,
    TrainingConfig,
    TuneConfig,
    read_recipe,
    validate_config,
)
from nexa_dagster.config_bridge import dagster_config_class

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = PROJECT_ROOT / "configs" / "default.yaml"
SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
            "evaluation": EvaluationConfig, "distill": DistillConfig, "telemetry": TelemetryConfig,
            "tracking": TrackingConfig, "storage": StorageConfig, "tune": TuneConfig}


class NexaRecipe(dg.ConfigurableResource):
    """The run's NexaConfig (data, model, training, evaluation, distill, telemetry, tracking, storage, tune)."""

    name: str
    data: dagster_config_class(DataConfig)
    model: dagster_config_class(ModelConfig)
    training: dagster_config_class(TrainingConfig)
    evaluation: dagster_config_class(EvaluationConfig)
    distill: dagster_config_class(DistillConfig)
    telemetry: dagster_config_class(TelemetryConfig)
    tracking: dagster_config_class(TrackingConfig)
    storage: dagster_config_class(StorageConfig)
    tune: dagster_config_class(TuneConfig)

    def core(self) -> NexaConfig:
        try:
            return validate_config(self.model_dump())
        except NexaError as err:
            raise dg.Failure(description=str(err)) from None

    def layout(self) -> Layout:
        return Layout.from_storage(self.core().storage)


def recipe_resource(path: str | os.PathLike | None = None) -> NexaRecipe:
    source = "recipe" if path else "NEXA_CONFIG" if os.environ.get("NEXA_CONFIG") else "default recipe"
    recipe = Path(path or os.environ.get("NEXA_CONFIG") or DEFAULT_RECIPE)
    if not recipe.is_absolute() and not recipe.exists():
        recipe = PROJECT_ROOT / recipe
    if not recipe.is_file():
        raise NexaError(f"{source} {recipe}: file not found; set NEXA_CONFIG to a YAML recipe such as configs/default.yaml")
    values = read_recipe(recipe, source)  # the same lines as `nexa --config`, naming where the recipe came from
    try:
        cfg = validate_config(values)
    except NexaError as err:
        raise NexaError(f"{source} {recipe}: {err}") from None
    values = cfg.model_dump(mode="json")
    # Absolute storage roots, so the UI, the daemon and every run process agree on locations.
    values["storage"] = {key: str(path) for key, path in asdict(Layout.from_storage(cfg.storage)).items()}
    return recipe_from_values(values)


def checked(recipe: NexaRecipe) -> dg.ResourceDefinition:
    """`recipe` as the code location registers it: same schema and defaults, and the run config's values are also
    checked by NexaConfig's rules (ranges, names) while the run is being created. A value the launchpad's types
    allow but the recipe refuses (`training.epochs: -1`) then stops `dagster job execute` before a run exists,
    as a type error does, instead of failing the run's first step."""
    definition = recipe.get_resource_definition()
    return definition.configured(_validated, config_schema=definition.config_schema.as_field())


def _validated(values: dict) -> dict:
    try:
        validate_config(values)
    except NexaError as err:  # the recipe itself was checked at load: the run config made this
        raise NexaError(f"bad run config under resources.nexa.config: {err}") from None
    return values


def recipe_from_values(values: dict) -> NexaRecipe:
    """A NexaRecipe whose field defaults are these values (a full NexaConfig dump)."""
    fields = {"name": (str, values["name"])}
    for key, model in SECTIONS.items():
        twin = dagster_config_class(model, values[key])
        fields[key] = (twin, twin())
    return create_model("NexaRecipe", __base__=NexaRecipe, **fields)()
