"""The code location: wires assets, checks, resources, jobs, schedules and sensors. No logic lives here."""

import dagster as dg

from nexa_dagster.assets import checks, data, distillation, drops, evaluation, infra, promotion, training
from nexa_dagster.assets.evaluation import threshold_check
from nexa_dagster.assets.release import release_assets
from nexa_dagster.jobs import distillation_pipeline, training_pipeline
from nexa_dagster.maintenance import maintenance, nightly_maintenance
from nexa_dagster.partitions import TEACHER_INPUTS
from nexa_dagster.resources import GPUTrainerResource, NVMLTelemetryResource, S3StorageResource, recipe_resource
from nexa_dagster.sensors import (drop_dataset_sensor, drops_automation, ingest_drop_job,
                                  raw_drops_folder_sensor, raw_drops_s3_sensor)

ASSETS = [
    *dg.load_assets_from_modules([data, training, evaluation, distillation, drops, infra]),
    *release_assets("trained_model", "evaluation_report"),
    *release_assets("student_model", "student_evaluation", prefix="student_", partitions_def=TEACHER_INPUTS),
]
CHECKS = [*dg.load_asset_checks_from_modules([checks, evaluation, drops, promotion]),
          threshold_check(distillation.student_evaluation)]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[training_pipeline, distillation_pipeline, maintenance, infra.infra_report_job, ingest_drop_job],
    schedules=[nightly_maintenance, infra.nightly_infra_report],
    sensors=[raw_drops_folder_sensor, raw_drops_s3_sensor, drops_automation, drop_dataset_sensor],
    resources={"nexa": recipe_resource(), "trainer": GPUTrainerResource(), "storage": S3StorageResource(),
               "telemetry": NVMLTelemetryResource()},
    # Steps form one chain, so separate processes would only add start-up cost (~7 s a run).
    executor=dg.in_process_executor,
)
