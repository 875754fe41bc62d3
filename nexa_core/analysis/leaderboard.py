"""The leaderboard: one pandas row per run manifest, joined with the run's record, log, telemetry and deploy state,
and the summary grouped by model and dataset (averages). `nexa analyze` and the `run_leaderboard` asset call
`build_leaderboard`; neither computes a figure of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nexa_core.analysis.sources import TELEMETRY_SUMS, collect_rows
from nexa_core.common.layout import Layout

if TYPE_CHECKING:
    import pandas as pd

IDENTITY = ("run_id", "line", "model", "dataset", "dataset_version", "created_at")
FIRST_METRICS = ("accuracy", "macro_f1", "loss")  # the evaluation's headline scores lead; other metrics follow sorted
LOSS = ("train_loss_mean", "train_loss_min", "train_loss_final")
RECORD = ("status", "base_model", "global_step", "runtime_seconds")
TAIL = (*TELEMETRY_SUMS, "telemetry_stages", "deployed", "ever_deployed", "manifest_path", "run_dir")
NUMERIC = (*LOSS, "runtime_seconds", *TELEMETRY_SUMS)
GROUP_BY = ("model", "dataset")
AVERAGED = ("accuracy", "macro_f1", "loss", *LOSS, "runtime_seconds", "gpu_hours", "cost_usd")
TOTALLED = ("gpu_hours", "cost_usd")


@dataclass
class Leaderboard:
    runs: pd.DataFrame  # one row per readable manifest
    groups: pd.DataFrame  # one row per (model, dataset): run count, averages, totals, deployed
    warnings: list[str] = field(default_factory=list)  # skipped manifests, unreadable deploy state

    @property
    def empty(self) -> bool:
        return self.runs.empty


def metric_columns(rows: list[dict]) -> list[str]:
    """The headline scores always (so `--sort accuracy` works with no run yet), then every other metric found."""
    fixed = {*IDENTITY, *LOSS, *RECORD, *TAIL}
    found = {k for row in rows for k in row if k not in fixed}
    return [*FIRST_METRICS, *sorted(found - set(FIRST_METRICS))]


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows in a fixed column order with typed columns: numbers as floats (NaN when absent), global_step as a
    nullable integer, created_at as a UTC timestamp, deploy flags as booleans."""
    import pandas as pd

    metrics = metric_columns(rows)
    columns = [*IDENTITY, *metrics, *LOSS, *RECORD, *TAIL]
    frame = pd.DataFrame(rows, columns=columns)
    for name in (*metrics, *NUMERIC):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame["global_step"] = pd.to_numeric(frame["global_step"], errors="coerce").astype("Int64")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, errors="coerce", format="ISO8601")
    for name in ("deployed", "ever_deployed"):
        frame[name] = frame[name].fillna(False).astype(bool)
    text = [c for c in columns if c not in (*metrics, *NUMERIC, "global_step", "created_at", "deployed", "ever_deployed")]
    frame[text] = frame[text].astype("string")
    return frame


def group_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model and dataset: how many runs, the mean of each score, loss, runtime and cost, total GPU-hours and
    cost, and whether one of them is deployed. Best mean accuracy first."""
    import pandas as pd

    averaged = [c for c in AVERAGED if c in runs.columns]
    columns = [*GROUP_BY, "runs", *(f"mean_{c}" for c in averaged), *(f"total_{c}" for c in TOTALLED), "deployed"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    grouped = runs.groupby(list(GROUP_BY), dropna=False, sort=True)
    out = grouped.agg(runs=("run_id", "size"), **{f"mean_{c}": (c, "mean") for c in averaged},
                      **{f"total_{c}": (c, lambda s: s.sum(min_count=1)) for c in TOTALLED},
                      deployed=("deployed", "any")).reset_index()
    order = "mean_accuracy" if "mean_accuracy" in out.columns else "runs"
    return out[columns].sort_values(order, ascending=False, kind="mergesort", na_position="last").reset_index(drop=True)


def build_leaderboard(layout: Layout) -> Leaderboard:
    rows, warnings = collect_rows(layout)
    runs = runs_frame(rows)
    return Leaderboard(runs=runs, groups=group_summary(runs), warnings=warnings)
