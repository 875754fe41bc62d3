"""Sorting and filtering the leaderboard (`nexa analyze --sort ... --filter ...`).

Sort: `--sort COL[,COL...]` puts the best first. Numbers where lower is better (any loss, cost, runtime, seconds,
GPU-hours, energy) sort ascending; every other number, and created_at (newest first), descending; text
alphabetically; true before false. `-COL` forces descending and `+COL` ascending for that key; `--ascending`
makes every key without a sign ascending. Missing values always sort last; ties keep manifest order.

Filter: `COL OP VALUE` with OP one of `=`, `!=`, `>=`, `<=`, `>`, `<` and `~` (contains, case-insensitive, text
only). The value is read as the column's type (a number, a date, true/false). A row with no value in the column
never matches. Filters combine with AND.
"""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING

from nexa_core.common.errors import NexaError

if TYPE_CHECKING:
    import pandas as pd

LOWER_IS_BETTER = ("loss", "cost", "runtime", "seconds", "gpu_hours", "energy")
OPERATORS = {"==": operator.eq, "=": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
             ">": operator.gt, "<": operator.lt}
FILTER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|=|>|<|~)\s*(.*?)\s*$")
TRUE, FALSE = {"true", "yes", "1"}, {"false", "no", "0"}


def _no_column(flag: str, name: str, frame: pd.DataFrame) -> NexaError:
    return NexaError(f"{flag}: no column {name!r}; available: {', '.join(frame.columns)}")


def _kind(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "text"


def best_first_ascending(name: str, kind: str) -> bool:
    """The direction that puts the best row first when the user gives no sign."""
    if kind == "number":
        return any(word in name for word in LOWER_IS_BETTER)
    return kind == "text"  # text A-Z; dates newest first; true first


def sort_runs(frame: pd.DataFrame, sort: str | None, ascending: bool = False) -> pd.DataFrame:
    """Sorted by `sort` (see the module docstring); without one, by accuracy (best first) if the runs have it,
    else newest first."""
    if not sort:
        sort = "accuracy" if "accuracy" in frame.columns else "created_at"
    keys, directions = [], []
    for raw in sort.split(","):
        key = raw.strip()
        sign = key[:1] if key[:1] in "+-" else ""
        name = key[len(sign):].strip()
        if not name:
            raise NexaError(f"--sort {sort!r}: empty column name; e.g. --sort accuracy or --sort=-cost_usd")
        if name not in frame.columns:
            raise _no_column("--sort", name, frame)
        keys.append(name)
        directions.append(sign == "+" if sign else (ascending or best_first_ascending(name, _kind(frame[name]))))
    return frame.sort_values(keys, ascending=directions, kind="mergesort", na_position="last").reset_index(drop=True)


def _value(flag: str, name: str, kind: str, op: str, text: str):
    import pandas as pd

    if op == "~" and kind != "text":
        raise NexaError(f"{flag}: '~' (contains) works on text columns; {name} is a {kind} column, use = or a comparison")
    if kind == "bool":
        if op not in ("=", "==", "!=") or text.lower() not in TRUE | FALSE:
            raise NexaError(f"{flag}: {name} is true or false; write {name}=true or {name}!=true")
        return text.lower() in TRUE
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise NexaError(f"{flag}: {text!r} is not a number ({name} is a number column), e.g. {name}>=0.8") from None
    if kind == "datetime":
        try:
            stamp = pd.Timestamp(text)
        except ValueError:
            raise NexaError(f"{flag}: {text!r} is not a date ({name}), e.g. {name}>=2026-01-31") from None
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return text


def filter_mask(frame: pd.DataFrame, expression: str) -> pd.Series:
    flag = f"--filter {expression!r}"
    match = FILTER_RE.match(expression)
    if not match:
        raise NexaError(f"{flag}: expected COLUMN OP VALUE with OP one of = != >= <= > < ~, e.g. --filter model~bert")
    name, op, text = match.groups()
    if name not in frame.columns:
        raise _no_column("--filter", name, frame)
    column = frame[name]
    value = _value(flag, name, _kind(column), op, text)
    present = column.notna()
    if op == "~":
        hits = column.astype("string").str.contains(value, case=False, regex=False)
    else:
        hits = OPERATORS[op](column, value)
    return (present & hits.fillna(False)).astype(bool)


def filter_runs(frame: pd.DataFrame, filters: list[str]) -> pd.DataFrame:
    """Only the rows every filter matches; a bad filter is refused before anything is written."""
    masks = [filter_mask(frame, f) for f in filters]  # all checked first, so the first bad one is named
    keep = frame.index == frame.index
    for mask in masks:
        keep &= mask.to_numpy()
    return frame[keep].reset_index(drop=True)
