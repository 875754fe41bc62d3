"""`training_pipeline`: source observation -> data -> model -> evaluation -> manifest -> package -> deployment -> mirror,
and the run leaderboard refreshed with the new run."""

import dagster as dg

from nexa_dagster.defs.release.lines import TRAINED_LINE

training_pipeline = dg.define_asset_job(
    "training_pipeline",
    # Groups select materializable assets only: the source is named so each run records its content version.
    selection=dg.AssetSelection.groups("training") | dg.AssetSelection.assets("training_source", *TRAINED_LINE.release_assets,
                                                                                         "run_leaderboard"),
    description="Fine-tune, evaluate, gate, record, package and deploy a classifier.",
)
