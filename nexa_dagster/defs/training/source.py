"""`training_source`: the raw data the recipe names (file, folder or hub id) as an observed source asset.

Each observation records the source's content version (nexa_core/data/source.py), so the graph starts at the
source file and `training_dataset`, materialized from an older version, shows as stale when the file changes.
`training_pipeline` observes it before preparing the data; "Observe sources" in the UI does it alone."""

import dagster as dg

from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.resources import NexaRecipe


@dg.observable_source_asset(group_name="training", description="The raw training data the recipe names "
                            "(data.path or data.name), versioned by its content.")
@refusals_as_failures
def training_source(nexa: NexaRecipe) -> dg.ObserveResult:
    from nexa_core.data.source import source_version

    version, facts = source_version(nexa.core().data)
    return dg.ObserveResult(data_version=dg.DataVersion(version), metadata={"content_version": version, **facts})
