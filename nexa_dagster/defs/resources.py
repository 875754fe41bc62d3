"""Registers the resources every domain uses (defined in `nexa_dagster/resources/`), and the executor that
NEXA_EXECUTOR chooses (in-process by default; nexa_dagster/execution/choice.py) with the IO manager it needs."""

import dagster as dg

from nexa_dagster.execution import choice
from nexa_dagster.resources import GPUTrainerResource, MLflowTrackingResource, NVMLTelemetryResource, S3StorageResource, recipe_resource
from nexa_dagster.resources.recipe import checked


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"nexa": checked(recipe_resource()), "trainer": GPUTrainerResource(), "storage": S3StorageResource(),
                   "telemetry": NVMLTelemetryResource(), "tracking": MLflowTrackingResource(), **choice.io_resources()},
        # In-process by default: the steps form one chain, so separate processes would only add start-up cost
        # (~7 s a run); Celery spreads them over GPU and CPU workers in production.
        executor=choice.executor(),
    )
