"""The code location: wires assets, checks, resources and jobs. No logic lives here."""

import dagster as dg

from nexa_dagster.assets import checks, data, evaluation, release, training
from nexa_dagster.jobs import training_pipeline
from nexa_dagster.resources import GPUTrainerResource, recipe_resource

ASSETS = dg.load_assets_from_modules([data, training, evaluation, release])
CHECKS = dg.load_asset_checks_from_modules([checks, evaluation])

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[training_pipeline],
    resources={"nexa": recipe_resource(), "trainer": GPUTrainerResource()},
    # Steps form one chain, so separate processes would only add start-up cost (~7 s a run).
    executor=dg.in_process_executor,
)
