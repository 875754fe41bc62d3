"""Jobs: `training_pipeline` materializes data -> model -> evaluation -> manifest -> package -> deployment."""

import dagster as dg

training_pipeline = dg.define_asset_job(
    "training_pipeline",
    selection=dg.AssetSelection.groups("training", "release"),
    description="Fine-tune, evaluate, gate, record, package and deploy a classifier.",
)
