"""Tags that link a Dagster run and the model runs it trained, so one click goes either way: the Runs page filters
by `nexa/run_id` (the trained model or the student) or `nexa/teacher_run_id`, and each model asset's metadata
carries `run_id`, next to the Dagster run that materialized it."""

import dagster as dg

RUN_ID_TAG = "nexa/run_id"
TEACHER_RUN_ID_TAG = "nexa/teacher_run_id"


def tag_run(context: dg.AssetExecutionContext, key: str, run_id: str | None) -> None:
    """Tag the current Dagster run with a model run id (a pinned external teacher has none)."""
    if run_id:
        context.instance.add_run_tags(context.run_id, {key: str(run_id)})
