"""Training data: load a raw file, folder or hub dataset, clean it, split it and store a content-addressed version.

Plain Python (no Dagster): the Dagster assets and the CLI both call `prepare_dataset`, and the runbooks'
query utility `DataQuery` reads what it stored.
"""

from nexa_core.data.prepare import PreparedDataset, prepare, prepare_dataset
from nexa_core.data.query import DataQuery

__all__ = ["DataQuery", "PreparedDataset", "prepare", "prepare_dataset"]
