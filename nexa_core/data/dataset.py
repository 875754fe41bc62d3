"""`PreparedDataset`: a stored, content-hashed dataset version as every later step receives it.

Kept apart from prepare.py (pandas, pyarrow) so the Dagster code location can name the type without loading them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PreparedDataset:
    version: str
    path: Path  # the version folder
    labels: list[str]  # sorted; a label's id is its index
    counts: dict[str, int]  # rows per split
    drop_counts: dict[str, int]  # rows dropped while cleaning, by reason
    source: str
    num_raw_rows: int
    reused: bool = False  # True when this version was already stored and nothing was written
    # The line (source + data settings) whose "latest" this version is, and its readable part (source, sample
    # size); "" for folders written before lines existed (nexa_core/data/lines.py).
    line: str = ""
    label: str = ""

    def metadata(self) -> dict:
        """What the UI shows for a dataset version (row counts per split, drops per reason)."""
        return {"dataset_version": self.version, "dataset_label": self.label, "data_hash": self.version, "dataset_path": self.path,
                "source": self.source, "labels": self.labels, "raw_rows": self.num_raw_rows,
                **{f"rows_{split}": n for split, n in self.counts.items()},
                **{f"dropped_{reason}": n for reason, n in self.drop_counts.items()}}
