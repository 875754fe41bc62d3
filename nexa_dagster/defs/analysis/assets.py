"""`run_leaderboard`: every run manifest joined with its run's record, log, telemetry and deploy state
(`nexa_core.analysis`, the same frame as `nexa analyze`), stored as `<durable>/analysis/leaderboard.parquet` with
its plots. Its metadata shows the top runs, the averages by model and dataset, and both plots.

It sits after each line's manifest and promotion (lineage), and `run_leaderboard_sensor` (sensors.py) refreshes it
whenever a manifest is recorded or a deploy takes effect, from a job or the CLI. It is in neither pipeline job: it
reads both model lines, and a job that materializes one line would make the UI ask to confirm every launch.
"""

import base64
import math
from pathlib import Path

import dagster as dg

from nexa_dagster.defs.release.lines import LINES
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import rounded, to_metadata
from nexa_dagster.resources import NexaRecipe

TOP = 10  # runs shown in the metadata table; the Parquet file holds every run
TOP_COLUMNS = ("run_id", "line", "dataset_version", "created_at", "accuracy", "macro_f1", "loss", "train_loss_final",
               "runtime_seconds", "gpu_hours", "cost_usd", "deployed")
GROUP_COLUMNS = ("model", "dataset", "runs", "mean_accuracy", "mean_macro_f1", "mean_loss", "mean_runtime_seconds",
                 "total_gpu_hours", "total_cost_usd", "deployed")
UPSTREAM = [name for line in LINES for name in (f"{line.prefix}run_manifest", line.promotion)]


def frame_table(frame, columns) -> dg.MetadataValue | None:
    """Rows of the frame as a metadata table: every record has every column (Dagster requires it), a missing value
    is an empty cell (null, never the text "None" or NaN), floats rounded like all metadata, times as text."""
    import pandas as pd

    names = [c for c in columns if c in frame.columns]
    if frame.empty or not names:
        return None
    kinds = {c: "bool" if pd.api.types.is_bool_dtype(frame[c]) else "int" if pd.api.types.is_integer_dtype(frame[c])
             else "float" if pd.api.types.is_numeric_dtype(frame[c]) else "string" for c in names}
    records = [dg.TableRecord({c: _cell(c, v, kinds[c]) for c, v in row.items()})
               for row in frame[names].astype(object).to_dict("records")]
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(
        columns=[dg.TableColumn(c, kind) for c, kind in kinds.items()]))


def _cell(name: str, value, kind: str):
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    if kind == "float":
        return rounded(name, float(value))
    if kind in ("int", "bool"):
        return int(value) if kind == "int" else bool(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def plots_markdown(pngs: list[Path]) -> str:
    """The plots as embedded images (Dagster shows images only through markdown), as metadata.py embeds the curve."""
    parts = []
    for png in pngs:
        encoded = base64.b64encode(Path(png).read_bytes()).decode()
        parts.append(f"![{png.stem.replace('_', ' ')}](data:image/png;base64,{encoded})")
    return "\n\n".join(parts)


@dg.asset(group_name="analysis", kinds={"pandas", "parquet"}, deps=UPSTREAM,
          description="Leaderboard of every run manifest with its metrics, mean/min/final training loss, runtime, "
                      "GPU-hours, cost, dataset, model line and deploy state; averages by model and dataset; plots "
                      "(<durable>/analysis/). The same table as `nexa analyze`.")
@refusals_as_failures
def run_leaderboard(context: dg.AssetExecutionContext, nexa: NexaRecipe) -> dg.MaterializeResult:
    from nexa_core.analysis.publish import publish

    layout = nexa.layout()
    published = publish(layout)
    board = published.leaderboard
    for warning in board.warnings:
        context.log.warning(warning)
    runs = board.runs
    best = runs.iloc[0] if not runs.empty else None
    deployed = runs[runs["deployed"]]
    values = {
        "top runs": frame_table(runs.head(TOP), TOP_COLUMNS),
        "by model and dataset": frame_table(board.groups, GROUP_COLUMNS),
        "runs": len(runs),
        "dagster/row_count": len(runs),
        "skipped_manifests": sum(w.startswith("skipped ") for w in board.warnings),
        "warnings": board.warnings or None,
        "best_run_id": None if best is None else str(best["run_id"]),
        "best_accuracy": None if best is None or "accuracy" not in runs or math.isnan(best["accuracy"])
        else float(best["accuracy"]),
        "deployed_run_id": str(deployed.iloc[0]["run_id"]) if not deployed.empty else None,
        "fingerprint": published.fingerprint,
        "leaderboard_path": published.leaderboard_path,
        "groups_path": published.groups_path,
        **{f"{png.stem}_path": png for png in published.plots},
    }
    first = {"plots": dg.MetadataValue.md(plots_markdown(published.plots))} if published.plots else {
        "plots": dg.MetadataValue.text(f"no run to plot yet: no readable manifest in {layout.manifests_dir}"
                                       if runs.empty else "no run has both a created_at and an accuracy")}
    return dg.MaterializeResult(metadata={**first, **to_metadata(values)},
                                data_version=dg.DataVersion(published.fingerprint))
