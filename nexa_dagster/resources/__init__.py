"""Resources: the pipeline recipe, the GPU trainer, NVML telemetry, durable storage and MLflow tracking."""

from nexa_dagster.resources.recipe import NexaRecipe, recipe_resource
from nexa_dagster.resources.storage import S3StorageResource
from nexa_dagster.resources.telemetry import FakeNVMLTelemetryResource, NVMLTelemetryResource
from nexa_dagster.resources.tracking import MLflowTrackingResource
from nexa_dagster.resources.trainer import GPUTrainerResource

__all__ = ["FakeNVMLTelemetryResource", "GPUTrainerResource", "MLflowTrackingResource", "NVMLTelemetryResource", "NexaRecipe",
           "S3StorageResource", "recipe_resource"]
