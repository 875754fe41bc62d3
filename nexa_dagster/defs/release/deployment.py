"""`current_model`: the one deployment asset. Its latest observation names what `deploy/current_model` serves
(run id, model line, metrics, dataset version, when, by which Dagster run or the CLI, the previous release), read
by the same core function as `nexa deploy` (`nexa_core.release.deployment.current_deployment`).

Three things record an observation, so the page is right however the pointer moved: each line's `promotion`
asset when it deploys, the `current_model_sensor` when the pointer or history changed outside Dagster (`nexa deploy`,
`nexa deploy --rollback`), and "Observe" on the asset page.
"""

import dagster as dg

from nexa_dagster.defs.release.lines import LINES
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import numbers
from nexa_dagster.resources import NexaRecipe

CURRENT_MODEL = dg.AssetKey("current_model")
STATE = "deploy_state"  # metadata entry that changes with every promotion or rollback (the sensor compares it)


def deployment_metadata(summary: dict | None) -> dict[str, dg.MetadataValue]:
    from nexa_core.release.deployment import state_key

    if summary is None:
        return {"run_id": dg.MetadataValue.text("nothing deployed"), STATE: dg.MetadataValue.text(state_key(None))}
    text = {k: str(summary[k]) for k in ("line", "dataset_version", "deployed_at", "by", "previous_run_id", "action")
            if summary.get(k) is not None}
    out = {"run_id": dg.MetadataValue.text(summary["run_id"]), **numbers(summary["metrics"]),
           **{k: dg.MetadataValue.text(v) for k, v in text.items()}}
    if summary.get("dagster_run_id"):
        out["dagster_run"] = dg.MetadataValue.dagster_run(summary["dagster_run_id"])
    if summary.get("promotion"):
        out["champion_comparison"] = dg.MetadataValue.text(summary["promotion"])
    if summary["forced"]:
        out["forced"] = dg.MetadataValue.bool(True)
        out["overrides"] = dg.MetadataValue.json(summary["overrides"])
    out["current_model_path"] = dg.MetadataValue.path(summary["current_model"])
    out[STATE] = dg.MetadataValue.text(summary["state"])
    return out


def describe_line(summary: dict | None) -> str:
    if summary is None:
        return "nothing deployed"
    accuracy = summary["metrics"].get("accuracy")
    score = f", accuracy {accuracy:.4f}" if accuracy is not None else ""
    return f"{summary['run_id']} ({summary['line']}{score}), {summary['action'] or 'deploy'} at {summary['deployed_at']}"


def observation(layout) -> dg.AssetObservation:
    """The deployment now, as an observation of `current_model`."""
    from nexa_core.release.deployment import current_deployment

    summary = current_deployment(layout)
    return dg.AssetObservation(CURRENT_MODEL, description=describe_line(summary), metadata=deployment_metadata(summary))


@dg.multi_observable_source_asset(
    name="observe_current_model", group_name="release",
    specs=[dg.AssetSpec(CURRENT_MODEL, deps=[line.promotion for line in LINES], kinds={"huggingface"},
                        description="The model deploy/current_model serves: run id, model line, test metrics, dataset "
                                    "version, when, by which run (or the CLI) and the previous release. Each line's "
                                    "promotion deploys into it; nexa deploy and rollbacks show up through "
                                    "current_model_sensor.")],
)
@refusals_as_failures
def current_model(nexa: NexaRecipe):
    from nexa_core.release.deployment import current_deployment

    summary = current_deployment(nexa.layout())
    yield dg.ObserveResult(asset_key=CURRENT_MODEL, metadata=deployment_metadata(summary))


def last_state(instance: dg.DagsterInstance) -> str | None:
    records = instance.fetch_observations(CURRENT_MODEL, limit=1).records
    if not records:
        return None
    entry = records[0].asset_observation.metadata.get(STATE)
    return entry.value if entry is not None else None


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Observes current_model when the deployment changed outside a Dagster run (nexa deploy, "
                       "nexa deploy --rollback), so the asset page always names the model served.")
def current_model_sensor(context: dg.SensorEvaluationContext, nexa: NexaRecipe):
    layout = nexa.layout()
    event = observation(layout)
    state = event.metadata[STATE].value
    if last_state(context.instance) == state:
        return dg.SkipReason(f"deployment unchanged: {event.description}")
    return dg.SensorResult(asset_events=[event])
