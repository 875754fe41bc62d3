"""Select the text and label columns and drop rows that would poison training, counting each drop by reason.

Dropped rows are reported (drop_counts), not errors: real corpora always have a few. Only problems that make
training impossible (missing columns, fewer than two classes, too few rows to split) raise NexaError.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import pandas as pd

from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig
from nexa_core.data.loading import describe_source, undecodable_rows

# Reasons in the order they are checked; a row is counted once, under the first reason that applies.
DROP_REASONS = ("empty_text", "missing_label", "bad_encoding", "dropped_label", "conflicting_labels", "duplicate")

# U+FFFD marks bytes an upstream tool could not decode; control characters (except tab, newline, carriage
# return) and C1 codes come from binary junk or cp1252 text misread as latin-1.
_BAD_CHARS = re.compile("[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
MIN_ROWS_PER_CLASS = 3  # one each for train, validation and test


def clean(df: pd.DataFrame, cfg: DataConfig, source: Optional[str] = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return (frame with columns text and label, both str, in input order; drop counts by reason)."""
    source = source or describe_source(cfg)
    out, drops = clean_rows(df, cfg, source)
    _check_enough(out, source, drops)
    return out, drops


def clean_rows(df: pd.DataFrame, cfg: DataConfig, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """`clean` without the whole-dataset size checks: a data drop may hold one class or a handful of rows."""
    for field, column in (("data.text_column", cfg.text_column), ("data.label_column", cfg.label_column)):
        if column not in df.columns:
            raise NexaError(
                f"{field}: column {column!r} not in {source}; available columns: {[str(c) for c in df.columns]}; "
                f"set {field}"
            )
    texts = [_text(v) for v in df[cfg.text_column].tolist()]
    labels = [_label(v) for v in df[cfg.label_column].tolist()]
    drops = dict.fromkeys(DROP_REASONS, 0)
    drops["bad_encoding"] = undecodable_rows(df)  # records the loader could not decode never reach the frame
    drop_labels = set(cfg.drop_labels)

    keep = []  # indices surviving the per-row checks
    for i, (text, label) in enumerate(zip(texts, labels)):
        if not text:
            drops["empty_text"] += 1
        elif not label:
            drops["missing_label"] += 1
        elif _BAD_CHARS.search(text):
            drops["bad_encoding"] += 1
        elif label in drop_labels:
            drops["dropped_label"] += 1
        else:
            keep.append(i)

    # The same text under two labels teaches nothing and leaks between splits: drop every copy.
    # Exact repeats (same text, same label) would also leak between splits: keep only the first.
    labels_by_key: dict[str, set[str]] = {}
    for i in keep:
        labels_by_key.setdefault(_key(texts[i]), set()).add(labels[i])
    seen: set[str] = set()
    rows = []
    for i in keep:
        key = _key(texts[i])
        if len(labels_by_key[key]) > 1:
            drops["conflicting_labels"] += 1
        elif key in seen:
            drops["duplicate"] += 1
        else:
            seen.add(key)
            rows.append(i)

    out = pd.DataFrame({"text": [texts[i] for i in rows], "label": [labels[i] for i in rows]}, dtype=object)
    return out, drops


def _text(value: Any) -> str:
    """Stripped text; missing values become '' (counted as empty_text)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _label(value: Any) -> str:
    """Labels as strings so 0/1 ints and 'fresh'/'rotten' behave alike; '' means missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    # A missing value turns an int column into floats (1 -> 1.0); map whole floats back to "1".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def dedupe_key(text: str) -> str:
    """The duplicate-detection key, shared with the incremental drop index."""
    return _key(text)


def _key(text: str) -> str:
    """Duplicate-detection key: whitespace differences do not make a different example."""
    return _SPACES.sub(" ", text).strip()


def format_drops(drops: dict[str, int]) -> str:
    """Drop counts for a human: `bad_encoding=8, duplicate=1`, or `none`."""
    return ", ".join(f"{k}={v}" for k, v in drops.items() if v) or "none"


def _check_enough(out: pd.DataFrame, source: str, drops: dict[str, int]) -> None:
    dropped = format_drops(drops)
    per_class = {str(k): int(v) for k, v in out["label"].value_counts().items()}
    if len(per_class) < 2:
        raise NexaError(
            f"data.label_column: {source} has {len(per_class)} class(es) after cleaning {per_class} "
            f"(dropped: {dropped}); a classifier needs at least 2; check data.label_column and data.drop_labels"
        )
    small = {k: v for k, v in per_class.items() if v < MIN_ROWS_PER_CLASS}
    if small:
        raise NexaError(
            f"data: {source} has too few rows for label(s) {small} after cleaning (dropped: {dropped}); each "
            f"class needs at least {MIN_ROWS_PER_CLASS} (one each for train, validation and test); add rows or "
            "list the label in data.drop_labels"
        )
