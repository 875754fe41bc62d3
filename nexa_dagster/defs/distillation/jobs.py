"""`distillation_pipeline` (one teacher-input partition): teacher -> outputs -> pairs -> student -> evaluation of
both -> the student's manifest, package, deployment and mirror (the run leaderboard follows through its sensor)."""

import dagster as dg

from nexa_dagster.defs.release.lines import STUDENT_LINE

distillation_pipeline = dg.define_asset_job(
    "distillation_pipeline",
    selection=dg.AssetSelection.assets("training_source", "training_dataset", *STUDENT_LINE.release_assets)
    | dg.AssetSelection.groups("distillation"),
    description="Teacher -> teacher outputs -> filtered pairs -> student; evaluate both, gate, package, deploy.",
)
