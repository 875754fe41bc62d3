"""`training_dataset`: validated, de-duplicated, split and content-hashed data."""

import dagster as dg

from nexa_dagster.resources import NexaRecipe

@dg.asset(group_name="training", kinds={"parquet"}, description="Validated, de-duplicated, stratified splits.")
def training_dataset(context: dg.AssetExecutionContext, nexa: NexaRecipe) -> dg.Output[dict]:
    from nexa_core.data.prepare import prepare

    cfg = nexa.core()
    dataset = prepare(cfg, nexa.layout())
    context.log.info(f"dataset version {dataset.version}: {dataset.counts} (dropped {dataset.drop_counts})")
    value = {"version": dataset.version, "path": str(dataset.path), "labels": dataset.labels,
             "source": dataset.source, "counts": dataset.counts}
    metadata = {
        "dataset_version": dataset.version,
        "data_hash": dataset.version,
        "dataset_path": dg.MetadataValue.path(str(dataset.path)),
        "source": dataset.source,
        "labels": dg.MetadataValue.json(dataset.labels),
        "raw_rows": dataset.num_raw_rows,
        **{f"rows_{split}": n for split, n in dataset.counts.items()},
        **{f"dropped_{reason}": n for reason, n in dataset.drop_counts.items()},
    }
    return dg.Output(value, metadata=metadata, data_version=dg.DataVersion(dataset.version))
