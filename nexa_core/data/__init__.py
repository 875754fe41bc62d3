"""Training data: load a raw file, folder or hub dataset, clean it, split it and store a content-addressed version.

Plain Python (no Dagster): the Dagster assets and the CLI both call `prepare_dataset`, and the runbooks'
query utility `DataQuery` reads what it stored.
"""

from typing import Any

from nexa_core.data.dataset import PreparedDataset

# pandas-backed members load on first use, so naming `PreparedDataset` (e.g. in the Dagster code location) is cheap.
_LAZY = {"dataset_for": "nexa_core.data.prepare", "prepare_dataset": "nexa_core.data.prepare",
         "DataQuery": "nexa_core.data.query"}

__all__ = ["DataQuery", "PreparedDataset", "dataset_for", "prepare_dataset"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
