"""Maintenance: the retention policy as a job, on a nightly schedule (same core step as `nexa cleanup`)."""

import dagster as dg

from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.resources import NexaRecipe, S3StorageResource


class RetentionConfig(dg.Config):
    days: float = 7.0  # prune what has not changed for this many days
    prune_size: str = "+2G"  # and any checkpoint larger than this (find -size semantics)
    keep_latest: int = 2  # newest checkpoints kept per run, so it can resume
    apply: bool = True  # the schedule acts; set false for a dry run from the launchpad
    archive: bool = False  # copy each candidate to durable storage (S3) before deleting it


@dg.op(description="Plan and apply checkpoint retention; never the best, latest, deployed or referenced.")
@refusals_as_failures
def apply_retention(context: dg.OpExecutionContext, nexa: NexaRecipe, storage: S3StorageResource,
                    config: RetentionConfig) -> dict:
    from nexa_core.retention.cleanup import cleanup

    report = cleanup(nexa.layout(), storage=storage.settings(), days=config.days, prune_size=config.prune_size,
                     keep_latest=config.keep_latest, apply=config.apply, archive=config.archive)
    context.log.info("\n" + report["table"])
    context.add_output_metadata({"would_free_bytes": report["would_free_bytes"], "applied": report["applied"],
                                 "freed_bytes": report.get("freed_bytes", 0),
                                 "deleted": dg.MetadataValue.json(report.get("deleted", []))})
    return {k: v for k, v in report.items() if k != "table"}


@dg.job(description="Nightly maintenance: checkpoint retention.")
def maintenance():
    apply_retention()


# Nightly maintenance is two runs: this op job (retention acts, it materializes nothing) and, a quarter of an hour
# later, the `infra_report` asset (`nexa_dagster/assets/infra.py`, schedule `nightly_infra_report`).
nightly_maintenance = dg.ScheduleDefinition(name="nightly_maintenance", job=maintenance, cron_schedule="0 3 * * *",
                                            execution_timezone="UTC",
                                            default_status=dg.DefaultScheduleStatus.RUNNING)
