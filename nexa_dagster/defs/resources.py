"""Registers the resources every domain uses (defined in `nexa_dagster/resources/`), and the in-process executor."""

import dagster as dg

from nexa_dagster.resources import GPUTrainerResource, MLflowTrackingResource, NVMLTelemetryResource, S3StorageResource, recipe_resource
from nexa_dagster.resources.recipe import checked


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"nexa": checked(recipe_resource()), "trainer": GPUTrainerResource(), "storage": S3StorageResource(),
                   "telemetry": NVMLTelemetryResource(), "tracking": MLflowTrackingResource()},
        # Steps form one chain, so separate processes would only add start-up cost (~7 s a run).
        executor=dg.in_process_executor,
    )
