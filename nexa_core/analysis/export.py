"""The leaderboard as files (CSV, JSON, Parquet; written atomically) and as a terminal table."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from nexa_core.common.atomic import atomic_write_bytes, atomic_write_text
from nexa_core.common.errors import NexaError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json", "parquet")
# What fits a terminal: who, what, how good, how long, how costly, whether deployed. Files carry every column.
TABLE_COLUMNS = ("run_id", "line", "dataset_version", "accuracy", "macro_f1", "loss", "train_loss_mean",
                 "train_loss_min", "train_loss_final", "runtime_seconds", "gpu_hours", "cost_usd", "deployed")
GROUP_TABLE_SKIP = ("mean_train_loss_mean", "mean_train_loss_min")
MAX_TEXT = 48  # long model strings ("BertForSequenceClassification (from /path)") are cut in the terminal only


def render(frame: pd.DataFrame, fmt: str) -> bytes:
    """The frame in `fmt`: CSV and JSON (an array of row objects; missing values as null) as UTF-8, Parquet."""
    if fmt == "csv":
        return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z").encode()
    if fmt == "json":
        # json.dumps, not DataFrame.to_json: pandas cuts floats to 10 significant digits by default.
        return (json.dumps([_json_row(r) for r in frame.astype(object).to_dict("records")], indent=2) + "\n").encode()
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise NexaError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _json_row(record: dict) -> dict:
    import pandas as pd

    def plain(value):
        if value is None or pd.isna(value):
            return None
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return value.item() if hasattr(value, "item") else value  # numpy scalars as Python numbers

    return {k: plain(v) for k, v in record.items()}


def write_frame(frame: pd.DataFrame, fmt: str, output: str | Path | None) -> Path | None:
    """Write to `output` atomically (a reader never sees half a file); without one, CSV/JSON go to stdout."""
    if output is None:
        if fmt == "parquet":
            raise NexaError("--format parquet writes a binary file: give --output PATH, e.g. --output leaderboard.parquet")
        import sys

        sys.stdout.write(render(frame, fmt).decode())
        return None
    return atomic_write_bytes(Path(output).expanduser(), render(frame, fmt))


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    text = str(value)
    if text in ("<NA>", "NaT", "nan"):
        return "-"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def table_text(frame: pd.DataFrame, columns: tuple[str, ...] | None = None) -> str:
    """A fixed-width table: numbers to 4 significant digits, missing values as '-', long text cut."""
    names = [c for c in (columns or frame.columns) if c in frame.columns]
    cells = [[_cell(v) for v in row] for row in frame[names].itertuples(index=False, name=None)]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def report_text(runs: pd.DataFrame, groups: pd.DataFrame, runs_too: bool = True) -> str:
    """What `nexa analyze` prints by default: the runs, then the summary by model and dataset (only the summary
    with --groups)."""
    group_columns = tuple(c for c in groups.columns if c not in GROUP_TABLE_SKIP)
    summary = f"by model and dataset (averages)\n{table_text(groups, group_columns)}\n"
    return f"runs ({len(runs)})\n{table_text(runs, TABLE_COLUMNS)}\n\n{summary}" if runs_too else summary


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write_text(Path(path).expanduser(), text)
