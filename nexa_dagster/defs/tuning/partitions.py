"""Each trial slot of a study (`<study>-trial-NNN`) is one partition of `hpo_trials`; `hpo_study` registers them."""

import dagster as dg

HPO_TRIALS = dg.DynamicPartitionsDefinition(name="hpo_trials")
