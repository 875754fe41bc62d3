"""Leaderboard plots as PNG (matplotlib, headless): a metric per run over time, and cost against accuracy.

Each PNG is drawn into memory and written atomically, so a reader (the UI, a browser) never sees half an image.
Without any cost recorded (CPU runs, or no price set), the second plot uses runtime instead and says so in its title
rather than drawing measured-looking zeros.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from nexa_core.common.atomic import atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd

OVER_TIME = "metric_over_time.png"
COST_VS_ACCURACY = "cost_vs_accuracy.png"
LINE_STYLES = {"trained": ("o", "tab:blue"), "student": ("s", "tab:orange")}  # the same look in both plots


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display on training nodes or in the daemon
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(7, 4), dpi=100)


def _save(plt, fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def _scatter_by_line(ax, frame: pd.DataFrame, x: str, y: str) -> None:
    for line, rows in frame.groupby("line", sort=True):
        marker, color = LINE_STYLES.get(str(line), ("^", "tab:green"))
        ax.scatter(rows[x], rows[y], marker=marker, color=color, label=str(line))
    deployed = frame[frame["deployed"]]
    if not deployed.empty:  # the deployed run ringed, so the champion stands out
        ax.scatter(deployed[x], deployed[y], s=220, facecolors="none", edgecolors="red", label="deployed")
    ax.legend()


def metric_over_time(runs: pd.DataFrame, metric: str, path: Path) -> Path | None:
    """`metric` of every run against its created_at, one marker per model line; None when no run has both."""
    rows = runs.dropna(subset=[metric, "created_at"]) if metric in runs.columns else runs.iloc[0:0]
    if rows.empty:
        return None
    plt, fig, ax = _figure()
    rows = rows.sort_values("created_at")
    ax.plot(rows["created_at"], rows[metric], color="lightgray", zorder=0)
    _scatter_by_line(ax, rows, "created_at", metric)
    ax.set_xlabel("created at (UTC)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per run over time ({len(rows)} runs)")
    fig.autofmt_xdate()
    return _save(plt, fig, path)


def cost_vs_accuracy(runs: pd.DataFrame, path: Path, metric: str = "accuracy") -> Path | None:
    """Cost (USD, summed over the run's stages) against `metric`; runtime instead when no run recorded a cost."""
    if metric not in runs.columns:
        return None
    costs = runs["cost_usd"].dropna()
    x, note = ("cost_usd", "cost (USD)") if (costs > 0).any() else ("runtime_seconds", "runtime (s); no cost recorded")
    rows = runs.dropna(subset=[x, metric])
    if rows.empty:
        return None
    plt, fig, ax = _figure()
    _scatter_by_line(ax, rows, x, metric)
    ax.set_xlabel(note)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {note.split(';')[0]} ({len(rows)} runs)")
    return _save(plt, fig, path)


def write_plots(runs: pd.DataFrame, out_dir: str | Path, metric: str = "accuracy") -> list[Path]:
    """Both plots into `out_dir`; a plot with no run to draw is left out (the list says which were written)."""
    out_dir = Path(out_dir).expanduser()
    made = [metric_over_time(runs, metric, out_dir / OVER_TIME), cost_vs_accuracy(runs, out_dir / COST_VS_ACCURACY, metric)]
    return [p for p in made if p is not None]
