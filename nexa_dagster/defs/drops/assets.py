"""Data drops: `raw_dataset` (one partition per dropped file) and `incremental_dataset` (every valid drop so far,
as a content-hashed dataset version), the start of the flow that retrains and promotes on new data.

`raw_dataset` reads only its own drop: cleaning, de-duplication against every text seen before (a hash index)
and hash-based split assignment live in `nexa_core/data/incremental.py`. A malformed drop materializes with
`valid: false` and the reason, and its blocking check `drop_is_valid` fails; nothing downstream uses it.
"""

import tempfile
from pathlib import Path

import dagster as dg

from nexa_dagster.defs.drops.automation import FOLLOW_DROPS
from nexa_dagster.defs.drops.partitions import RAW_DROPS
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import to_metadata
from nexa_dagster.resources import NexaRecipe, S3StorageResource

GROUP = "drops"


def drop_source(kind: str, nexa: NexaRecipe, storage: S3StorageResource):
    """The watched location of `kind` ("folder" or "s3") from data.drops, or None for an unset S3 prefix; S3 is
    reached with the storage resource's settings (endpoint, region, credentials). Each source is built alone, so
    a bad S3 prefix never stops folder drops; a bad setting is a one-line NexaError naming the field."""
    from nexa_core.data.drops import DropSource
    from nexa_core.storage.uri import parse_s3_uri

    drops = nexa.core().data.drops
    if kind == "folder":
        return DropSource(drops.folder or nexa.layout().raw_drops_dir)
    if not drops.s3_prefix:
        return None
    parse_s3_uri(drops.s3_prefix, "data.drops.s3_prefix")  # gs://, http://...: named here, not as a "folder"
    return DropSource(drops.s3_prefix, storage=storage.settings())


@dg.asset(group_name=GROUP, kinds={"parquet"}, partitions_def=RAW_DROPS,
          description="One data drop: validated, cleaned, de-duplicated against all earlier drops, split by hash.")
@refusals_as_failures
def raw_dataset(context: dg.AssetExecutionContext, nexa: NexaRecipe, storage: S3StorageResource) -> dg.Output[dict]:
    from nexa_core.data.incremental import ingest_drop

    cfg, layout, name = nexa.core(), nexa.layout(), context.partition_key
    # The folder first; then the S3 prefix (the sensors never register one name twice). The S3 prefix is only
    # looked at for a drop the folder does not hold, so a bad prefix cannot fail a folder drop's run.
    source = drop_source("folder", nexa, storage)
    if not source.exists(name):
        source = drop_source("s3", nexa, storage) or source
    with tempfile.TemporaryDirectory(prefix="nexa-drop-") as tmp:
        path = source.fetch(name, Path(tmp))
        record = ingest_drop(cfg.data, layout.drops_dir, name, path, seed=cfg.training.distributed.seed)
    valid = record["status"] == "valid"
    if valid:
        context.log.info(f"drop {name}: {record['rows']} new rows {record['counts']} (dropped {record['drop_counts']})")
    else:
        context.log.error(f"drop {name} is malformed and was skipped: {record['reason']}")
    metadata = {"valid": valid, "reason": record["reason"], "source": source.describe(),
                "rows": record["rows"], "raw_rows": record["raw_rows"], "reused": record["reused"],
                **{f"rows_{split}": n for split, n in record["counts"].items()},
                **{f"dropped_{reason}": n for reason, n in record["drop_counts"].items()}}
    return dg.Output(record, metadata=to_metadata(metadata))


@dg.asset_check(asset=raw_dataset, blocking=True, partitions_def=RAW_DROPS,
                description="The drop could be read and has the configured text and label columns.")
@refusals_as_failures
def drop_is_valid(raw_dataset: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=raw_dataset["status"] == "valid",
                               metadata={"reason": str(raw_dataset["reason"] or ""), "rows": raw_dataset["rows"]})


@dg.asset(group_name=GROUP, kinds={"parquet"}, deps=[raw_dataset], output_required=False,
          automation_condition=FOLLOW_DROPS,
          description="Every valid drop so far as one content-hashed dataset version (only new drops are read).")
@refusals_as_failures
def incremental_dataset(context: dg.AssetExecutionContext, nexa: NexaRecipe):
    from nexa_core.data.incremental import build_version

    cfg, layout = nexa.core(), nexa.layout()
    dataset = build_version(cfg.data, layout.datasets_dir, layout.drops_dir, seed=cfg.training.distributed.seed,
                            source=f"drops:{layout.drops_dir}")
    if dataset is None:
        # No output, no materialization: nothing downstream retrains on unchanged data.
        context.log.info("no drop added rows since the last version; nothing to do")
        return
    context.log.info(f"dataset version {dataset.version}: {dataset.counts}")
    yield dg.Output(dataset, data_version=dg.DataVersion(dataset.version), metadata=to_metadata(dataset.metadata()))
