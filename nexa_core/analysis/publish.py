"""The stored leaderboard (`<durable>/analysis/`): what the `run_leaderboard` asset writes and the UI shows.

    analysis/leaderboard.parquet    every run's row (the same frame `nexa analyze --format parquet` writes)
    analysis/groups.parquet         the summary by model and dataset
    analysis/metric_over_time.png, analysis/cost_vs_accuracy.png
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nexa_core.analysis.export import render
from nexa_core.analysis.leaderboard import Leaderboard, build_leaderboard
from nexa_core.analysis.plots import write_plots
from nexa_core.analysis.query import sort_runs
from nexa_core.analysis.sources import inputs_fingerprint
from nexa_core.common.atomic import atomic_write_bytes
from nexa_core.common.layout import Layout

LEADERBOARD = "leaderboard.parquet"
GROUPS = "groups.parquet"


def analysis_dir(layout: Layout) -> Path:
    return layout.durable / "analysis"


@dataclass
class Published:
    leaderboard: Leaderboard  # runs sorted best first (the default sort)
    fingerprint: str  # of the manifests and deploy state read: the sensor compares it with the current one
    leaderboard_path: Path
    groups_path: Path
    plots: list[Path] = field(default_factory=list)


def publish(layout: Layout, metric: str = "accuracy") -> Published:
    # Fingerprint first: a manifest written while the table is built makes the next sensor tick refresh again.
    fingerprint = inputs_fingerprint(layout)
    board = build_leaderboard(layout)
    board.runs = sort_runs(board.runs, None)
    out = analysis_dir(layout)
    runs_path = atomic_write_bytes(out / LEADERBOARD, render(board.runs, "parquet"))
    groups_path = atomic_write_bytes(out / GROUPS, render(board.groups, "parquet"))
    return Published(board, fingerprint, runs_path, groups_path, write_plots(board.runs, out, metric))
