"""Data checks on `training_dataset` that block training on a broken split."""

import dagster as dg

from nexa_core.data.dataset import PreparedDataset
from nexa_dagster.defs.training.data import training_dataset
from nexa_dagster.failures import refusals_as_failures


@dg.asset_check(asset=training_dataset, blocking=True,
                description="Splits are disjoint and every class appears in train, validation and test.")
@refusals_as_failures
def splits_disjoint_and_stratified(training_dataset: PreparedDataset) -> dg.AssetCheckResult:
    from nexa_core.data import DataQuery

    query = DataQuery(training_dataset.path.parent)
    frames = {s: query.get_training_dataset(training_dataset.version, s) for s in ("train", "validation", "test")}
    texts = {s: set(f["text"]) for s, f in frames.items()}
    overlap = len(texts["train"] & texts["test"]) + len(texts["train"] & texts["validation"])
    missing = {s: sorted(set(training_dataset.labels) - set(f["label"])) for s, f in frames.items()}
    missing = {s: m for s, m in missing.items() if m}
    return dg.AssetCheckResult(passed=overlap == 0 and not missing,
                               metadata={"overlapping_texts": overlap, "missing_classes": dg.MetadataValue.json(missing)})
