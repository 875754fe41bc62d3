"""The tuning jobs: `tune_study` starts a study (launchpad: `resources.nexa.config.tune`), `tune_trial` runs one
trial slot (a partition of `hpo_trials`; the sensor launches one run per slot), `tuned_release` takes the study's
best trial through evaluation, thresholds, the champion gate, packaging and deployment."""

import dagster as dg

from nexa_dagster.defs.release.lines import TUNED_LINE

tune_study = dg.define_asset_job(
    "tune_study", selection=dg.AssetSelection.assets("training_source", "training_dataset", "hpo_study"),
    description="Prepare the data and start (or extend) the recipe's study: one hpo_trials partition per trial slot.")

tune_trial = dg.define_asset_job(
    "tune_trial", selection=dg.AssetSelection.assets("hpo_trials"),
    description="One trial of a study (pick its partition); hpo_trials_sensor launches one run per new slot.")

tuned_release = dg.define_asset_job(
    "tuned_release", selection=dg.AssetSelection.assets(TUNED_LINE.model, TUNED_LINE.report, *TUNED_LINE.release_assets),
    description="The latest study's best trial: evaluate, gate (thresholds, champion), record, package, deploy.")
