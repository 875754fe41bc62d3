"""Lineage starts at the source file: `training_source` is observed with the file's content version, and a changed
file makes `training_dataset` stale (what the UI shows as "Unsynced")."""

from __future__ import annotations

import hashlib
import shutil

import dagster as dg
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from tests.dagster_helpers import project_defs, run_job

SOURCE, DATASET = dg.AssetKey("training_source"), dg.AssetKey("training_dataset")


def _observed_version(instance) -> str:
    [record] = instance.fetch_observations(SOURCE, limit=1).records
    return record.asset_observation.data_version


def _status(instance, recipe) -> StaleStatus:
    resolver = CachingStaleStatusResolver(instance, project_defs(recipe).resolve_asset_graph(),
                                          LoadingContextForTest(instance))
    return resolver.get_status(DATASET)


def test_the_source_file_is_observed_and_its_change_makes_the_dataset_stale(recipe, tiny_csv, tmp_path):
    csv = shutil.copy(tiny_csv, tmp_path / "reviews.csv")
    recipe["data"]["path"] = str(csv)
    instance = dg.DagsterInstance.ephemeral()

    # training_pipeline's first steps: observe the source, then prepare the dataset from it.
    result = run_job("prepare", recipe, instance, selection=["training_source", "training_dataset"])
    assert result.success
    first = _observed_version(instance)
    assert first == hashlib.sha256(csv.read_bytes()).hexdigest()[:16]
    assert _status(instance, recipe) == StaleStatus.FRESH

    # Observing an unchanged file keeps the version, and the dataset stays fresh.
    assert run_job("observe", recipe, instance, selection=["training_source"]).success
    assert _observed_version(instance) == first and _status(instance, recipe) == StaleStatus.FRESH

    with open(csv, "a", encoding="utf-8") as fh:
        fh.write("a brand new review that changes the file,positive\n")
    assert run_job("observe", recipe, instance, selection=["training_source"]).success
    assert _observed_version(instance) != first
    assert _status(instance, recipe) == StaleStatus.STALE


def test_training_pipeline_observes_the_source_before_preparing_the_data(recipe):
    job = project_defs(recipe).resolve_job_def("training_pipeline")
    assert {"training_source", "training_dataset"} <= set(job.graph.node_dict)
    assert DATASET in job.asset_layer.asset_graph.get(SOURCE).child_keys
