"""Run the project's real jobs in-process with a recipe whose storage lives in tmp."""

from __future__ import annotations

import dagster as dg

from nexa_core.config import validate_config
from nexa_dagster import definitions
from nexa_dagster.resources import GPUTrainerResource, MLflowTrackingResource, NVMLTelemetryResource, S3StorageResource
from nexa_dagster.resources.recipe import recipe_from_values


def project_resources(recipe: dict, storage=None, telemetry=None, trainer=None) -> dict:
    return {"nexa": recipe_from_values(validate_config(recipe).model_dump(mode="json")),
            "trainer": trainer or GPUTrainerResource(device="cpu"), "storage": storage or S3StorageResource(),
            "telemetry": telemetry or NVMLTelemetryResource(), "tracking": MLflowTrackingResource()}


def project_defs(recipe: dict, storage=None, jobs=(), telemetry=None, trainer=None) -> dg.Definitions:
    """The project's assets, checks, jobs and sensors with the recipe (storage in tmp) and a CPU trainer."""
    loaded = definitions.defs
    return dg.Definitions(
        assets=loaded.assets, asset_checks=loaded.asset_checks, jobs=[*loaded.jobs, *jobs], sensors=loaded.sensors,
        resources=project_resources(recipe, storage, telemetry, trainer),
    )


def run_job(name: str, recipe: dict, instance=None, partition: str | None = None, storage=None, selection=None,
            telemetry=None, trainer=None):
    """Execute a project job in-process (or, with `selection`, an ad-hoc job over those assets)."""
    jobs = [dg.define_asset_job(name, selection=selection)] if selection is not None else []
    defs = project_defs(recipe, storage, jobs, telemetry, trainer)
    return defs.resolve_job_def(name).execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), partition_key=partition, raise_on_error=False)


def metadata(result, asset: str) -> dict:
    [mat] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


def tick_sensor(sensor, instance, recipe: dict, cursor: str | None = None, storage=None):
    """One sensor evaluation as the daemon does it; the partitions it asks for are added like the daemon does."""
    resources = project_resources(recipe, storage)
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={k: resources[k] for k in ("nexa", "storage")})
    result = sensor(context)
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def latest_deployment(instance) -> dict:
    """The latest observation of `current_model` (what the UI shows as the deployment), as plain values."""
    from nexa_dagster.defs.release.deployment import CURRENT_MODEL

    [record] = instance.fetch_observations(CURRENT_MODEL, limit=1).records
    return {k: v.value for k, v in record.asset_observation.metadata.items()}
