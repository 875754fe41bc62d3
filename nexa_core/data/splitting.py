"""Deterministic stratified train/validation/test split, then the row caps (data.max_samples, data.eval_samples).

Same rows + same seed -> same splits, whatever order the rows arrived in: each class is first sorted by a hash of
its text, then shuffled with a generator derived from the seed.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np
import pandas as pd

from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig

SPLITS = ("train", "validation", "test")


def split_dataset(df: pd.DataFrame, cfg: DataConfig, seed: int) -> dict[str, pd.DataFrame]:
    """Split a cleaned frame (columns text, label) into {train, validation, test}, each with every class."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in SPLITS}
    for label in sorted(df["label"].unique()):
        rows = df[df["label"] == label]
        # Sorting by content first makes the shuffle independent of input order; the text breaks hash ties.
        texts = rows["text"].tolist()
        rows = rows.iloc[sorted(range(len(texts)), key=lambda j: (_digest(texts[j]), texts[j]))]
        # One generator per class: adding or removing a class does not reshuffle the others.
        rows = rows.iloc[_rng(seed, "class", label).permutation(len(rows))]
        n_val, n_test = _sizes(len(rows), cfg, label)
        parts["validation"].append(rows.iloc[:n_val])
        parts["test"].append(rows.iloc[n_val:n_val + n_test])
        parts["train"].append(rows.iloc[n_val + n_test:])
    caps = {"train": cfg.max_samples, "validation": cfg.eval_samples, "test": cfg.eval_samples}
    out = {}
    for name in SPLITS:
        frame = pd.concat(parts[name])
        # Interleave the classes so batches are mixed; classes were concatenated in sorted order, so still stable.
        frame = frame.iloc[_rng(seed, "order", name).permutation(len(frame))]
        out[name] = _cap(frame, caps[name])[["text", "label"]].reset_index(drop=True)
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rng(seed: int, *purpose: str) -> np.random.Generator:
    # Hashing the seed with a purpose gives independent streams and accepts any int (numpy rejects negatives).
    material = hashlib.sha256("/".join([str(seed), *purpose]).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(material[:16], "big"))


def _sizes(n: int, cfg: DataConfig, label: str) -> tuple[int, int]:
    """Validation and test sizes for one class of n rows: the configured fractions, at least 1 row each."""
    if n < 3:
        raise NexaError(f"data: label {label!r} has {n} row(s); each class needs at least 3 to appear in every split")
    n_val = max(1, round(n * cfg.validation_fraction))
    n_test = max(1, round(n * cfg.test_fraction))
    while n - n_val - n_test < 1:  # tiny classes: keep at least one training row
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def _cap(frame: pd.DataFrame, n: Optional[int]) -> pd.DataFrame:
    """Keep n rows with class proportions kept (largest remainder) and at least one row per class when n allows.

    Rows are taken in the split's seeded order, so the kept subset is deterministic too.
    """
    if n is None or len(frame) <= n:
        return frame
    counts = frame["label"].value_counts()
    labels = sorted(counts.index)
    if n < len(labels):
        return frame.iloc[:n]
    # Largest-remainder apportionment of n by class size (integer arithmetic, ties by label name) ...
    total = len(frame)
    quota = {k: n * int(counts[k]) // total for k in labels}
    by_remainder = sorted(labels, key=lambda k: (-(n * int(counts[k]) % total), k))
    for k in by_remainder[: n - sum(quota.values())]:
        quota[k] += 1
    # ... then every class keeps at least one row, taken from the largest quota (n >= classes, so it has 2+).
    for k in labels:
        if quota[k] == 0:
            quota[max(labels, key=lambda j: (quota[j], j))] -= 1
            quota[k] = 1
    rank = frame.groupby("label", sort=False).cumcount()
    return frame[rank.to_numpy() < frame["label"].map(quota).to_numpy()]
