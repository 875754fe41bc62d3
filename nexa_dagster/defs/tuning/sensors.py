"""The sensors that drive a study started in Dagster.

`hpo_trials_sensor` launches one `tune_trial` run per newly registered slot (its run key is the slot, so each slot
is launched once; a failed slot is run again from the asset's page). The runs wait in the run queue and their
trial steps for a `gpu` pool slot, so the pool's size is how many trials train at once.

`tuned_release_sensor` launches `tuned_release` once every slot of the latest study has run (none queued or
running) and at least one trial completed: the best trial then goes through the champion gate by itself."""

import dagster as dg

from nexa_core.tuning.handoff import slot_key, slot_study
from nexa_dagster.defs.tuning.jobs import tune_trial, tuned_release
from nexa_dagster.defs.tuning.partitions import HPO_TRIALS

HPO_STUDY = dg.AssetKey("hpo_study")
HPO_TRIALS_KEY = dg.AssetKey("hpo_trials")


@dg.sensor(job=tune_trial, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches a tune_trial run for each new hpo_trials partition (a trial slot of a study).")
def hpo_trials_sensor(context: dg.SensorEvaluationContext):
    slots = context.instance.get_dynamic_partitions(HPO_TRIALS.name)
    seen = int(context.cursor or 0)  # slots are only ever appended, so a count is a complete cursor
    if len(slots) <= seen:
        return dg.SkipReason(f"no new trial slot ({len(slots)} registered)")
    done = context.instance.get_materialized_partitions(HPO_TRIALS_KEY)
    requests = [dg.RunRequest(run_key=key, partition_key=key, tags={"nexa/study": slot_study(key)})
                for key in slots[seen:] if key not in done]
    return dg.SensorResult(run_requests=requests, cursor=str(len(slots)))


@dg.sensor(job=tuned_release, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="When every trial slot of the latest study has run, releases its best trial (tuned_release).")
def tuned_release_sensor(context: dg.SensorEvaluationContext):
    records = context.instance.fetch_materializations(HPO_STUDY, limit=1).records
    if not records:
        return dg.SkipReason("no study started yet (materialize hpo_study)")
    event = records[0]
    meta = event.asset_materialization.metadata
    study, count = meta["study"].value, int(meta["trial_slots"].value)
    slots = [slot_key(study, i) for i in range(count)]
    waiting, ran = 0, 0
    for key in slots:
        records = context.instance.get_run_records(
            dg.RunsFilter(job_name=tune_trial.name, tags={"dagster/partition": key}), limit=1)
        if not records or not records[0].dagster_run.is_finished:
            waiting += 1
        else:
            ran += 1
    if waiting:
        return dg.SkipReason(f"study {study}: {waiting} of {count} trial slots not finished yet")
    done = context.instance.get_materialized_partitions(HPO_TRIALS_KEY)
    completed = sorted(key for key in slots if key in done)
    if not completed:
        return dg.SkipReason(f"study {study}: every slot ran, none completed a trial")
    # A new key when the study is started again or a failed slot later completes: the release reflects it.
    run_key = f"{study}-{event.storage_id}-{len(completed)}"
    return dg.RunRequest(run_key=run_key, tags={"nexa/study": study})
