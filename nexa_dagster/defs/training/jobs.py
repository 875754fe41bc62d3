"""`training_pipeline`: source observation -> data -> model -> evaluation -> manifest -> package -> deployment -> mirror.
The run leaderboard is refreshed by its sensor once the manifest is recorded (not in this job: it also reads the
student line, which this job does not materialize, and the UI would ask to confirm a launch with missing upstreams)."""

import dagster as dg

from nexa_dagster.defs.release.lines import TRAINED_LINE

training_pipeline = dg.define_asset_job(
    "training_pipeline",
    # Groups select materializable assets only: the source is named so each run records its content version.
    selection=dg.AssetSelection.groups("training") | dg.AssetSelection.assets("training_source", *TRAINED_LINE.release_assets),
    description="Fine-tune, evaluate, gate, record, package and deploy a classifier.",
)
