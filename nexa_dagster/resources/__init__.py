"""Resources: the pipeline recipe and the GPU trainer."""

from nexa_dagster.resources.recipe import NexaRecipe, recipe_resource
from nexa_dagster.resources.trainer import GPUTrainerResource

__all__ = ["GPUTrainerResource", "NexaRecipe", "recipe_resource"]
