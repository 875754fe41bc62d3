"""Jobs. `training_pipeline`: data -> model -> evaluation -> manifest -> package -> deployment.
`distillation_pipeline` (one teacher-input partition): teacher -> outputs -> pairs -> student -> evaluation of
both -> the student's manifest, package and deployment."""

import dagster as dg

TRAINING_RELEASE = ["run_manifest", "model_package", "deployed_model", "run_mirror"]
STUDENT_RELEASE = [f"student_{name}" for name in TRAINING_RELEASE]

training_pipeline = dg.define_asset_job(
    "training_pipeline",
    selection=dg.AssetSelection.groups("training") | dg.AssetSelection.assets(*TRAINING_RELEASE),
    description="Fine-tune, evaluate, gate, record, package and deploy a classifier.",
)

distillation_pipeline = dg.define_asset_job(
    "distillation_pipeline",
    selection=dg.AssetSelection.assets("training_dataset", *STUDENT_RELEASE) | dg.AssetSelection.groups("distillation"),
    description="Teacher -> teacher outputs -> filtered pairs -> student; evaluate both, gate, package, deploy.",
)
