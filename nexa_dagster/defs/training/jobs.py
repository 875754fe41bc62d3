"""`training_pipeline`: data -> model -> evaluation -> manifest -> package -> deployment -> mirror."""

import dagster as dg

from nexa_dagster.defs.release.lines import TRAINED_LINE

training_pipeline = dg.define_asset_job(
    "training_pipeline",
    selection=dg.AssetSelection.groups("training") | dg.AssetSelection.assets(*TRAINED_LINE.release_assets),
    description="Fine-tune, evaluate, gate, record, package and deploy a classifier.",
)
