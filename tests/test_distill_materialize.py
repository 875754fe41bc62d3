"""The distillation graph materialized in-process with tiny models: partitions, incremental outputs, release."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from tests.dagster_helpers import latest_deployment, run_job
from tests.dagster_helpers import metadata as _meta
from tests.metadata_helpers import assert_readable, assert_training_curve, raw_metadata
from tests.tiny import make_tiny_bert

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def four_layer_model(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("teacher_base"), layers=4)


def _run(recipe: dict, instance, partition: str):
    return run_job("distillation_pipeline", recipe, instance=instance, partition=partition)


def test_distillation_pipeline_end_to_end_and_a_new_partition_computes_only_new_outputs(recipe, four_layer_model):
    recipe["model"]["name_or_path"] = str(four_layer_model)
    recipe["distill"] = {"student_layers": 2, "top_k": 2, "chunk_size": 64}
    recipe["tracking"] = {"mlflow": {"enabled": True}}  # the embedded store: checked by _assert_tracked
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("teacher_inputs", ["v1", "v2"])

    first = _run(recipe, instance, "v1")
    assert first.success
    outputs = _meta(first, "teacher_outputs")
    assert outputs["computed"] > 0 and outputs["skipped"] == 0
    pairs = _meta(first, "distillation_pairs")
    assert pairs["kept"] + sum(v for k, v in pairs.items() if k.startswith("dropped_")) == pairs["total"]
    evaluation = _meta(first, "student_evaluation")
    teacher_row, student_row = (r.data for r in evaluation["teacher_vs_student"].records)
    assert teacher_row["model"] == "teacher" and student_row["model"] == "student"
    assert student_row["parameters"] < teacher_row["parameters"] and student_row["accuracy"] == evaluation["accuracy"]
    assert 0 <= evaluation["agreement"] <= 1 and evaluation["student_latency_ms"] == student_row["latency_ms"] > 0
    # Training is visible: the teacher trained here and the student open with their curves.
    for asset in ("teacher_model", "student_model"):
        assert assert_training_curve(raw_metadata(first, asset)).parent.name == _meta(first, asset)["run_id"]
    assert list(raw_metadata(first, "student_evaluation"))[0] == "teacher_vs_student"
    assert_readable(first)
    run_id = _meta(first, "student_model")["run_id"]
    assert _meta(first, "student_promotion")["promoted"] is True
    deployed = Path(recipe["storage"]["durable"]) / "deploy" / "current_model"
    assert run_id.startswith("tiny-student_") and deployed.resolve().parent.name == run_id
    assert latest_deployment(instance)["run_id"] == run_id and latest_deployment(instance)["line"] == "student"
    manifest = json.loads((Path(recipe["storage"]["durable"]) / "runs/manifests" / f"{run_id}.json").read_text())
    assert manifest["metrics"]["accuracy"] == pytest.approx(evaluation["accuracy"], 1e-3)
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks["meets_thresholds"] is True
    _assert_tracked(recipe, first, run_id)

    # v2 = the same training texts plus five new unlabelled ones: only those five reach the teacher.
    unlabelled = Path(recipe["storage"]["shared"]) / "new_reviews.jsonl"
    unlabelled.write_text("".join(json.dumps({"review": f"a brand new review number {i} great"}) + "\n"
                                  for i in range(5)))
    recipe["distill"]["unlabelled_path"] = str(unlabelled)
    second = _run(recipe, instance, "v2")
    assert second.success
    assert _meta(second, "teacher_model")["trained_now"] is False
    # The reused teacher still shows the curves of the run that trained it.
    assert_training_curve(raw_metadata(second, "teacher_model"))
    assert _meta(second, "teacher_inputs")["rows_unlabelled"] == 5
    assert _meta(second, "teacher_outputs")["computed"] == 5
    assert _meta(second, "teacher_outputs")["skipped"] == outputs["computed"]


def _assert_tracked(recipe: dict, result, student_run_id: str) -> None:
    """MLflow (embedded under <durable>/mlflow): the teacher, the teacher outputs and the student are runs, the last
    two nested in the distillation run; each is tagged with its Dagster run, asset and partition; the assets link
    their MLflow run; the deployed student is the registry's champion."""
    from mlflow import MlflowClient

    durable = Path(recipe["storage"]["durable"])
    uri = f"sqlite:///{durable / 'mlflow/mlflow.db'}"
    client = MlflowClient(uri, uri)
    runs = {r.data.tags.get("nexa.kind"): r for r in client.search_runs(
        [client.get_experiment_by_name("nexacompute").experiment_id])}
    assert set(runs) == {"teacher", "teacher_outputs", "student", "distillation"}
    parent = runs["distillation"].info.run_id
    assert runs["student"].data.tags["mlflow.parentRunId"] == parent == runs["teacher_outputs"].data.tags[
        "mlflow.parentRunId"]
    assert "mlflow.parentRunId" not in runs["teacher"].data.tags
    for kind, asset in (("teacher", "teacher_model"), ("teacher_outputs", "teacher_outputs"),
                        ("student", "student_model")):
        tags = runs[kind].data.tags
        assert tags["dagster.run_id"] == result.run_id and tags["dagster.asset_key"] == asset
    assert runs["student"].data.tags["dagster.partition"] == "v1"
    assert runs["teacher_outputs"].data.metrics["computed"] == _meta(result, "teacher_outputs")["computed"]
    assert _meta(result, "student_model")["mlflow_run_id"] == runs["student"].info.run_id
    assert _meta(result, "student_evaluation")["mlflow_run_id"] == runs["student"].info.run_id
    assert _meta(result, "teacher_outputs")["mlflow_run_id"] == runs["teacher_outputs"].info.run_id
    assert _meta(result, "teacher_model")["mlflow_run_id"] == runs["teacher"].info.run_id
    assert runs["student"].data.metrics["test_accuracy"] == pytest.approx(_meta(result, "student_evaluation")["accuracy"],
                                                                         abs=1e-3)
    tracking = json.loads((durable / "runs" / student_run_id / "tracking.json").read_text())
    aliases = {k: str(v) for k, v in client.get_registered_model("tiny").aliases.items()}
    assert aliases == {"champion": tracking["model_version"]}
    assert not (Path.cwd() / "mlflow.db").exists() and not (Path.cwd() / "mlruns").exists()
