"""`training_dataset`: validated, de-duplicated, split and content-hashed data, from `training_source`."""

import dagster as dg

from nexa_core.data.dataset import PreparedDataset
from nexa_dagster.defs.training.source import training_source
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import to_metadata
from nexa_dagster.resources import NexaRecipe


@dg.asset(group_name="training", kinds={"parquet"}, deps=[training_source],
          description="Validated, de-duplicated, stratified splits.")
@refusals_as_failures
def training_dataset(context: dg.AssetExecutionContext, nexa: NexaRecipe) -> dg.Output[PreparedDataset]:
    from nexa_core.data.prepare import dataset_for

    dataset = dataset_for(nexa.core(), nexa.layout())
    context.log.info(f"dataset version {dataset.version}: {dataset.counts} (dropped {dataset.drop_counts})")
    return dg.Output(dataset, metadata=to_metadata(dataset.metadata()), data_version=dg.DataVersion(dataset.version))
