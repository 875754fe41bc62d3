"""Sequence-level distillation of a causal LM, end to end in-process with tiny GPT-2 models built in code."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nexa_core.config import validate_config
from nexa_core.distill.sft import sft_features, train_causal_student
from tests.dagster_helpers import metadata, run_job
from tests.metadata_helpers import assert_training_curve, raw_metadata
from tests.tiny_gpt2 import make_tiny_gpt2

pytestmark = pytest.mark.slow
TEMPLATE = "{text} =>"


def test_prompt_tokens_are_masked_from_the_loss(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_gpt2(tmp_path / "gpt2"))
    features = sft_features(pd.DataFrame({"text": ["the film was =>"], "completion": [" great"]}), tokenizer, 64)
    prompt_len = len(tokenizer("the film was =>", add_special_tokens=False)["input_ids"])
    labels, ids = features[0]["labels"], features[0]["input_ids"]
    assert labels[:prompt_len] == [-100] * prompt_len
    assert labels[prompt_len:] == ids[prompt_len:] and ids[-1] == tokenizer.eos_token_id


def _fine_tuned_teacher(recipe: dict, csv, tmp_path):
    """A 4-layer GPT-2 taught to answer `<review> =>` with ` positive` or ` negative`."""
    frame = pd.read_csv(csv)
    pairs = pd.DataFrame({"text": frame["review"],
                          "completion": frame["sentiment"].map({"pos": " positive", "neg": " negative"})})
    pairs_path = tmp_path / "teacher_pairs.parquet"
    pairs.to_parquet(pairs_path)
    cfg = validate_config({**recipe, "training": {**recipe["training"], "epochs": 6, "optimizer": {"lr": 0.005},
                                                  "checkpoint": {"every_steps": 50, "keep": 1}},
                           "distill": {"kind": "causal_lm", "prompt_template": TEMPLATE}})
    return train_causal_student(cfg, pairs_path, make_tiny_gpt2(tmp_path / "base", layers=4), tmp_path / "teacher")


def test_causal_lm_student_distilled_from_teacher_generations(recipe, tiny_csv, tmp_path):
    teacher = _fine_tuned_teacher(recipe, tiny_csv, tmp_path)
    recipe["distill"] = {"kind": "causal_lm", "teacher": teacher["final_dir"], "prompt_template": TEMPLATE,
                         "max_new_tokens": 3, "student_layers": 2, "chunk_size": 50}
    recipe["evaluation"]["thresholds"] = {"agreement": 0.5}
    recipe["training"]["optimizer"] = {"lr": 0.005}
    recipe["data"]["eval_samples"] = 16
    recipe["tracking"] = {"mlflow": {"enabled": True}}  # the SFT student is an MLflow run too (embedded store)
    import dagster as dg

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("teacher_inputs", ["v1"])
    result = run_job("distillation_pipeline", recipe, instance=instance, partition="v1")
    assert result.success
    outputs = metadata(result, "teacher_outputs")
    assert outputs["computed"] > 0
    pairs = metadata(result, "distillation_pairs")
    assert pairs["kept"] > 0
    evaluation = metadata(result, "student_evaluation")
    teacher_row, student_row = (r.data for r in evaluation["teacher_vs_student"].records)
    assert student_row["parameters"] < teacher_row["parameters"] and "accuracy" not in student_row
    assert_training_curve(raw_metadata(result, "student_model"))  # the SFT student logs the same curves
    assert evaluation["agreement"] >= 0.5  # the student answers like its teacher
    assert metadata(result, "student_promotion")["run_id"].startswith("tiny-student_")
    # The SFT student records the same parents as a classifier student: the pinned teacher, pairs, no KD.
    from pathlib import Path

    from nexa_core.lineage import lineage
    from tests.helpers_runs import make_layout

    run_id = metadata(result, "student_promotion")["run_id"]
    layout = make_layout(Path(recipe["storage"]["durable"]).parent)
    record = json.loads((layout.run_dir(run_id) / "run.json").read_text())["lineage"]
    assert record["role"] == "student" and record["kind"] == "causal_lm" and record["kd"] is None
    assert record["teacher"]["run_id"] is None and record["teacher"]["pinned_path"] == teacher["final_dir"]
    assert record["pairs"]["kept"] == pairs["kept"] and record["environment_fingerprint"]
    kinds = [n.kind for n in lineage(layout, run_id)]
    start = kinds.index("student run")  # after the deployed model, when the student was promoted
    assert kinds[start:start + 5] == ["student run", "distillation pairs", "teacher outputs", "teacher inputs",
                                      "pinned teacher"]
    _assert_student_tracked(layout, run_id)


def _assert_student_tracked(layout, run_id: str) -> None:
    """The SFT student's MLflow run: nested in its distillation run, its loss per step, its test agreement; its files
    are artifacts, no registered model (the transformers flavor served here is text classification)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{layout.durable.resolve() / 'mlflow/mlflow.db'}"
    client = MlflowClient(uri, uri)
    runs = {r.data.tags.get("nexa.kind"): r for r in client.search_runs(
        [client.get_experiment_by_name("nexacompute").experiment_id])}
    student = runs["student"]
    assert student.info.run_name == run_id and student.info.status == "FINISHED"
    assert student.data.tags["mlflow.parentRunId"] == runs["distillation"].info.run_id
    log = [json.loads(line) for line in (layout.run_dir(run_id) / "logs/train_log.jsonl").read_text().splitlines()]
    assert [m.step for m in client.get_metric_history(student.info.run_id, "loss")] == [r["step"] for r in log
                                                                                         if "loss" in r]
    assert "test_agreement" in student.data.metrics
    assert "model_version" not in json.loads((layout.run_dir(run_id) / "tracking.json").read_text())
