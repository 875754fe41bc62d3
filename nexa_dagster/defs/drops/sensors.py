"""Drop sensors: a new file in the raw-data folder or under the S3 prefix becomes a `raw_drops` partition and a
run of `ingest_drop` for it; the rest follows (see below).

The cursor (JSON) remembers every file name already handled - registered or skipped - with its fingerprint, so
a restarted daemon requests nothing twice; names already registered as partitions are skipped too, in case a
cursor is lost. A file that cannot be a drop (bad name, unsupported format, empty) is logged once with the
reason and never retried; a file changed under a handled name is logged once and never reprocessed.

A source that cannot be used (a bad `data.drops` setting, an S3 prefix that cannot be listed, a folder that cannot
be read) skips that sensor's ticks, the other sensors keep running: the tick that first sees a reason gives it in
full, later ticks with the same reason say only since when (the cursor keeps the reason), and the sensor resumes
by itself once the source works.

Downstream, `drops_automation` builds the next `incremental_dataset` version, and `drop_dataset_sensor` turns each
new version into teacher-input set `drops-<version>` and a `distillation_pipeline` run for it (cursor: the last
materialization handled; run key: the set's name).
"""

import json
import time

import dagster as dg

from nexa_dagster.defs.distillation.jobs import distillation_pipeline
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.drops.assets import drop_source, raw_dataset
from nexa_dagster.defs.drops.partitions import RAW_DROPS
from nexa_dagster.resources import NexaRecipe, S3StorageResource

ingest_drop_job = dg.define_asset_job("ingest_drop", selection=[raw_dataset], partitions_def=RAW_DROPS,
                                      description="Validate, clean, de-duplicate and split one data drop.")


FIELDS = {"folder": "data.drops.folder", "s3": "data.drops.s3_prefix"}


def watch(context, kind: str, nexa: NexaRecipe, storage: S3StorageResource) -> dg.SensorResult | dg.SkipReason:
    """One tick of the `kind` drop sensor; a source that cannot be used skips the tick with the reason."""
    from nexa_core.common.errors import NexaError

    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        source = drop_source(kind, nexa, storage)
        if source is None:
            unset = dg.SkipReason(f"{FIELDS[kind]} is not set; set it to watch an S3 prefix")
            # A reason kept from an earlier bad setting is forgotten, so it is given in full if it comes back.
            return dg.SensorResult(skip_reason=unset, cursor=_cursor(cursor.get("handled", {}))) if "problem" in cursor else unset
        return evaluate_drops(context, source, kind, cursor)
    except NexaError as err:
        return _disabled(kind, str(err), cursor)


def _disabled(kind: str, reason: str, cursor: dict) -> dg.SensorResult:
    last = cursor.get("problem") or {}
    if last.get("reason") == reason:
        # Every tick is logged by the daemon: the reason once, not every 30 s.
        note = f"{FIELDS[kind]} unusable since {last['since']} (reason unchanged, given on that tick); fix it to resume"
        return dg.SensorResult(skip_reason=dg.SkipReason(note), cursor=json.dumps(cursor, sort_keys=True))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return dg.SensorResult(skip_reason=dg.SkipReason(f"{kind} drops disabled: {reason}"),
                           cursor=json.dumps({**cursor, "problem": {"reason": reason, "since": since}}, sort_keys=True))


def _cursor(handled: dict) -> str:
    return json.dumps({"handled": handled}, sort_keys=True)


def evaluate_drops(context, source, kind: str, cursor: dict) -> dg.SensorResult:
    """One sensor tick over `source`: new partitions, their run requests and the next cursor."""
    from nexa_core.data.drops import problem

    handled: dict[str, str] = cursor.get("handled", {})
    drops = source.list()
    if "problem" in cursor:
        context.log.info(f"{kind} drops resumed: {source.describe()} can be listed again")
    new, skipped = [], []
    for drop in drops:
        seen = handled.get(drop.name)
        if seen == f"skipped:{drop.fingerprint}":
            continue  # reported once already; a changed file (e.g. an empty one now written) is looked at again
        if seen is not None and not seen.startswith("skipped:"):
            if seen != drop.fingerprint and not seen.startswith("changed:"):
                context.log.warning(f"drop {drop.name} changed after it was handled; drops are immutable, so it is "
                                    "not reprocessed: put new data in a new file")
                handled[drop.name] = f"changed:{drop.fingerprint}"
            continue
        reason = problem(drop)
        if reason is None and context.instance.has_dynamic_partition(RAW_DROPS.name, drop.name):
            reason = "a drop with this name is already registered (from another source or an earlier cursor)"
        if reason:
            context.log.warning(f"skipping {kind} drop {drop.name}: {reason}")
            handled[drop.name] = f"skipped:{drop.fingerprint}"
            skipped.append(drop.name)
        else:
            handled[drop.name] = drop.fingerprint
            new.append(drop)
    next_cursor = _cursor(handled)
    if not new:
        return dg.SensorResult(cursor=next_cursor, skip_reason=dg.SkipReason(
            f"no new drops in {source.describe()}" + (f" (skipped: {', '.join(skipped)})" if skipped else "")))
    context.log.info(f"new {kind} drops: {', '.join(d.name for d in new)}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"{d.name}@{d.fingerprint}", partition_key=d.name,
                                    tags={"nexa/drop_source": kind}) for d in new],
        dynamic_partitions_requests=[RAW_DROPS.build_add_request([d.name for d in new])],
        cursor=next_cursor,
    )


@dg.sensor(job=ingest_drop_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New files in data.drops.folder (default $NEXA_SHARED/data/raw) become raw_drops partitions.")
def raw_drops_folder_sensor(context: dg.SensorEvaluationContext, nexa: NexaRecipe, storage: S3StorageResource):
    return watch(context, "folder", nexa, storage)


@dg.sensor(job=ingest_drop_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="New objects directly under data.drops.s3_prefix become raw_drops partitions.")
def raw_drops_s3_sensor(context: dg.SensorEvaluationContext, nexa: NexaRecipe, storage: S3StorageResource):
    return watch(context, "s3", nexa, storage)


drops_automation = dg.AutomationConditionSensorDefinition(
    "drops_automation", target=dg.AssetSelection.groups("drops"),
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Declarative automation of the drop flow: a valid new drop makes incremental_dataset due.")


@dg.sensor(job=distillation_pipeline, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="A new incremental_dataset version becomes teacher-input set drops-<version> and a "
                       "distillation_pipeline run: teacher outputs, pairs, student, evaluation, gated release.")
def drop_dataset_sensor(context: dg.SensorEvaluationContext):
    from nexa_core.data.names import drop_inputs_name

    after = int(context.cursor) if context.cursor else None
    # Only the newest version: it already holds every earlier drop, so one student per tick is enough.
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("incremental_dataset"), after_storage_id=after),
        ascending=False, limit=1).records
    if not records:
        return dg.SkipReason("no new incremental_dataset version")
    record = records[0]
    version = record.asset_materialization.metadata["dataset_version"].value
    key = drop_inputs_name(version)
    context.log.info(f"dataset version {version}: distilling a student on input set {key}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, partition_key=key, tags={"nexa/dataset_version": version})],
        dynamic_partitions_requests=[TEACHER_INPUTS.build_add_request([key])],
        cursor=str(record.storage_id),
    )
