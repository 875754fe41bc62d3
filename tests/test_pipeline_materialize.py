"""The whole training graph materialized in-process with a tiny model built in code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import jsonschema
import pytest

from nexa_core.release.manifest import schema
from tests.dagster_helpers import latest_deployment, run_job
from tests.dagster_helpers import metadata as _meta
from tests.metadata_helpers import assert_readable, assert_training_curve, raw_metadata

pytestmark = pytest.mark.slow


def _materialize(recipe: dict, instance=None):
    return run_job("training_pipeline", recipe, instance=instance)


def test_whole_graph_trains_evaluates_records_packages_and_deploys(recipe, tmp_path):
    from transformers import pipeline

    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(recipe, instance=instance)
    assert result.success
    data = _meta(result, "training_dataset")
    assert data["rows_train"] > 0 and data["rows_test"] > 0 and len(data["data_hash"]) == 16
    model = _meta(result, "trained_model")
    assert model["global_step"] > 0 and Path(model["final_dir"]).is_dir()
    assert assert_training_curve(raw_metadata(result, "trained_model")) == Path(model["run_dir"]) / "loss_curve.png"
    assert 0 <= model["best_validation_accuracy"] <= 1 and model["best_validation_loss"] > 0
    report = _meta(result, "evaluation_report")
    assert report["accuracy"] >= 0.8 and isinstance(report["macro_f1"], float)
    assert [row.data["class"] for row in report["per_class"].records] == ["neg", "pos"]
    assert_readable(result)  # every asset and check of the job: few plotted numbers, no "None", no GPU figures
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"meets_thresholds": True, "splits_disjoint_and_stratified": True}

    manifest_path = Path(_meta(result, "run_manifest")["manifest_path"])
    manifest = json.loads(manifest_path.read_text())
    jsonschema.validate(manifest, schema())
    assert manifest["run_id"].startswith("tiny_") and manifest["metrics"]["accuracy"] == pytest.approx(report["accuracy"], 1e-3)

    assert _meta(result, "promotion")["promoted"] is True
    current = tmp_path / "durable" / "deploy" / "current_model"
    deployed = latest_deployment(instance)
    assert deployed["run_id"] == model["run_id"] and deployed["line"] == "trained" and deployed["by"] == "Dagster"
    assert deployed["accuracy"] == report["accuracy"] and deployed["dataset_version"] == data["dataset_version"]
    clf = pipeline("text-classification", model=str(current))
    # tests/tiny.py labels a review by its sentiment words alone, so these two are unambiguous.
    assert clf("great superb lovely film")[0]["label"] == "pos"
    assert clf("awful boring dull film")[0]["label"] == "neg"
    assert json.loads((current / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def test_a_model_below_its_thresholds_is_not_packaged_or_deployed(recipe, tmp_path):
    # A model that cannot learn (a vanishing learning rate) misses a reachable minimum; a minimum above 1 is
    # refused by the config itself (tests/test_bad_input.py).
    recipe["training"]["optimizer"]["lr"] = 1e-12
    recipe["evaluation"]["thresholds"] = {"accuracy": 0.99}
    result = _materialize(recipe)
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert {"trained_model", "evaluation_report"} <= materialized
    assert not materialized & {"run_manifest", "model_package", "promotion"}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["meets_thresholds"].passed is False
    assert not (tmp_path / "durable" / "deploy" / "current_model").exists()
    # The reason in one line, on the check and as the run's failure (tests/test_failures.py has the details).
    reason = checks["meets_thresholds"].description
    assert re.fullmatch(r"accuracy 0\.\d{3} < 0\.990 \(evaluation\.thresholds\.accuracy\); train longer .*", reason)
    assert [f.step_failure_data.user_failure_data.description for f in result.get_step_failure_events()] == [reason]


def _stop_at_step_12(monkeypatch, error: BaseException) -> None:
    from nexa_core.training.hf import NexaTrainer

    original = NexaTrainer.training_step

    def stop(self, *args, **kwargs):
        if self.state.global_step == 12:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NexaTrainer, "training_step", stop)


def test_rematerializing_after_an_interruption_resumes_the_same_run(recipe, monkeypatch):
    # What terminating the run from the UI raises in the step; a kill leaves the run the same way.
    from dagster._core.errors import DagsterExecutionInterruptedError

    _stop_at_step_12(monkeypatch, DagsterExecutionInterruptedError())
    instance = dg.DagsterInstance.ephemeral()
    assert not _materialize(recipe, instance=instance).success
    monkeypatch.undo()

    resumed = _materialize(recipe, instance=instance)
    model = _meta(resumed, "trained_model")
    assert model["resumed_from"].endswith("checkpoint-10")
    runs = Path(recipe["storage"]["durable"]) / "runs"
    assert sorted(p.name for p in runs.iterdir() if p.name != "manifests") == [model["run_id"]]  # no second run


def test_a_run_that_failed_is_recorded_failed_and_the_next_materialization_starts_anew(recipe, monkeypatch):
    _stop_at_step_12(monkeypatch, RuntimeError("CUDA error: an illegal memory access was encountered"))
    instance = dg.DagsterInstance.ephemeral()
    assert not _materialize(recipe, instance=instance).success
    monkeypatch.undo()
    runs = Path(recipe["storage"]["durable"]) / "runs"
    [failed] = [p for p in runs.iterdir() if p.name != "manifests"]
    record = json.loads((failed / "run.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"

    model = _meta(_materialize(recipe, instance=instance), "trained_model")
    assert model["run_id"] != failed.name and "resumed_from" not in model  # a fresh run: absent, not "None"
