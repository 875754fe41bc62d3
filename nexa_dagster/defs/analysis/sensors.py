"""`run_leaderboard_sensor`: refresh the leaderboard when a run manifest is recorded (by a job, `nexa train` or
`nexa distill`, or copied in by `nexa pull`), or a deploy or rollback takes effect.

The cursor is the fingerprint of those inputs (`nexa_core.analysis.sources.inputs_fingerprint`: manifest names,
sizes and mtimes, the deploy history and where current_model points). A tick with an unchanged fingerprint does
nothing; so does one whose fingerprint the latest materialization already read (a pipeline job refreshed it).
"""

import dagster as dg

from nexa_dagster.defs.analysis.assets import run_leaderboard
from nexa_dagster.resources import NexaRecipe

run_leaderboard_job = dg.define_asset_job("run_leaderboard_job", selection=[run_leaderboard],
                                          description="Rebuild the run leaderboard and its plots.")


@dg.sensor(job=run_leaderboard_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="A new or rewritten run manifest, or a deploy/rollback, refreshes run_leaderboard.")
def run_leaderboard_sensor(context: dg.SensorEvaluationContext, nexa: NexaRecipe):
    from nexa_core.analysis.sources import inputs_fingerprint, manifest_paths

    layout = nexa.layout()
    fingerprint = inputs_fingerprint(layout)
    if fingerprint == context.cursor:
        return dg.SkipReason("no new manifest or deployment since the last refresh")
    if context.cursor is None and not manifest_paths(layout):
        return dg.SkipReason(f"no run manifest in {layout.manifests_dir} yet")
    latest = context.instance.get_latest_materialization_event(run_leaderboard.key)
    read = latest.asset_materialization.metadata.get("fingerprint") if latest and latest.asset_materialization else None
    if read is not None and read.value == fingerprint:
        return dg.SensorResult(cursor=fingerprint, skip_reason=dg.SkipReason("the leaderboard is already up to date"))
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"leaderboard-{fingerprint}")], cursor=fingerprint)
