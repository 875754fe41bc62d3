"""Champion/challenger promotion: the core decision, and the drop flow end to end with tiny models, driven by
its real sensors (a worse student is not deployed, a better one is; keeping the champion is not a failure)."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import PromotionConfig, validate_config
from nexa_core.release import deploy
from nexa_core.release.promotion import compare
from nexa_dagster.defs.drops.sensors import drop_dataset_sensor, raw_drops_folder_sensor
from tests.dagster_helpers import metadata, run_job, tick_sensor
from tests.tiny import write_reviews_csv


def test_compare_needs_a_strict_improvement_above_the_margin():
    acc = PromotionConfig(metric="accuracy", min_improvement=0.0)
    assert compare({"accuracy": 0.9}, {"accuracy": 0.8}, acc)["promote"] is True
    assert compare({"accuracy": 0.8}, {"accuracy": 0.9}, acc)["promote"] is False
    assert compare({"accuracy": 0.8}, {"accuracy": 0.8}, acc)["promote"] is False  # a tie keeps the champion
    margin = PromotionConfig(metric="macro_f1", min_improvement=0.05)
    assert compare({"macro_f1": 0.84}, {"macro_f1": 0.80}, margin)["promote"] is False
    decision = compare({"macro_f1": 0.86}, {"macro_f1": 0.80}, margin)
    assert decision["promote"] is True and decision["improvement"] == pytest.approx(0.06)
    loss = PromotionConfig(metric="loss")
    assert compare({"loss": 0.3}, {"loss": 0.5}, loss)["promote"] is True  # lower loss is better
    assert compare({"loss": 0.6}, {"loss": 0.5}, loss)["promote"] is False
    first = compare({"accuracy": 0.1}, None, acc)
    assert first["promote"] is True and first["reason"] == "no champion deployed"
    with pytest.raises(NexaError, match="evaluation.promotion.metric"):
        compare({"macro_f1": 0.9}, {"accuracy": 0.5}, acc)


def _drop(tmp_path, name, rows, seed):
    frame = pd.read_csv(write_reviews_csv(tmp_path / f"src-{seed}.csv", rows=rows, seed=seed))
    frame["review"] = frame["review"] + f" d{seed}"  # new texts: not duplicates of earlier drops
    frame.to_csv(tmp_path / "raw" / name, index=False)


class Flow:
    """The drop flow as the daemon drives it: folder sensor -> ingest_drop run -> incremental_dataset (what
    drops_automation requests) -> drop_dataset_sensor -> distillation_pipeline run for drops-<version>."""

    def __init__(self, recipe, tmp_path):
        self.recipe, self.tmp_path, self.instance = recipe, tmp_path, dg.DagsterInstance.ephemeral()
        self.cursors = {"folder": None, "dataset": None}

    def drop(self, name: str, seed: int, **training):
        _drop(self.tmp_path, name, rows=240, seed=seed)
        tick = tick_sensor(raw_drops_folder_sensor, self.instance, self.recipe, self.cursors["folder"])
        self.cursors["folder"] = tick.cursor
        [request] = tick.run_requests
        assert request.partition_key == name
        assert run_job("ingest_drop", self.recipe, instance=self.instance, partition=name).success
        built = run_job("build", self.recipe, instance=self.instance, selection=["incremental_dataset"])
        assert built.success
        tick = tick_sensor(drop_dataset_sensor, self.instance, self.recipe, self.cursors["dataset"])
        self.cursors["dataset"] = tick.cursor
        [request] = tick.run_requests
        version = metadata(built, "incremental_dataset")["dataset_version"]
        assert request.partition_key == f"drops-{version}"
        step = {**self.recipe, "training": {**self.recipe["training"], **training}}
        return run_job("distillation_pipeline", step, instance=self.instance, partition=request.partition_key)


@pytest.mark.slow
def test_a_drop_flows_to_a_student_deployed_only_when_it_beats_the_champion(recipe, tmp_path):
    (tmp_path / "raw").mkdir()
    recipe["data"]["drops"] = {"folder": str(tmp_path / "raw")}
    recipe["distill"] = {"student_layers": 1, "top_k": 2}
    recipe["evaluation"]["thresholds"] = {"accuracy": 0.0}  # isolate the champion/challenger gate
    recipe["evaluation"]["promotion"] = {"metric": "accuracy", "min_improvement": 0.0}
    layout = Layout.from_storage(validate_config(recipe).storage)
    flow = Flow(recipe, tmp_path)
    # One huge step wrecks what the student took over from the teacher: about chance accuracy.
    weak = {"max_steps": 1, "optimizer": {"lr": 1.0}, "schedule": {"name": "constant", "warmup_ratio": 0.0}}

    # 0. The teacher, fine-tuned once on the base data and pinned: students train differently, it stays put.
    trained = run_job("teacher", recipe, instance=flow.instance, selection=["training_dataset", "teacher_model"])
    teacher = metadata(trained, "teacher_model")
    assert teacher["trained_now"] is True
    recipe["distill"]["teacher"] = str(layout.run_dir(teacher["run_id"]) / "final")

    # 1. Nothing deployed: the first (weak) student becomes the champion.
    first = flow.drop("drop-1.csv", seed=1, **weak)
    assert first.success
    assert metadata(first, "teacher_model")["teacher_version"] == teacher["teacher_version"]
    inputs = metadata(first, "teacher_inputs")
    assert inputs["dataset_version"] == metadata(first, "student_model")["dataset_version"]
    champion = metadata(first, "student_promotion")["run_id"]
    assert metadata(first, "student_promotion")["promoted"] is True
    assert deploy.current_release(layout) == champion
    manifest = metadata(first, "student_run_manifest")["manifest"]
    assert manifest["version"] == inputs["dataset_version"] and manifest["dataset"].startswith("drops:")

    # 2. A second drop: only its rows reach the teacher; a well-trained student beats the champion on the same
    # (new) test split and is promoted, with the comparison recorded.
    second = flow.drop("drop-2.csv", seed=2)
    assert second.success
    outputs = metadata(second, "teacher_outputs")
    assert outputs["skipped"] == metadata(first, "teacher_outputs")["computed"] and outputs["computed"] > 0
    evaluation = metadata(second, "student_evaluation")
    decision = evaluation["promotion"]
    assert decision["champion_run_id"] == champion and decision["promote"] is True and decision["gated"] is True
    assert decision["challenger_value"] == evaluation["accuracy"] > decision["champion_value"]
    deployed = metadata(second, "student_promotion")
    assert deployed["champion_run_id"] == champion and deployed["comparison"]["promote"] is True
    better = deployed["run_id"]
    assert deploy.current_release(layout) == better != champion
    checks = {e.check_name: e.passed for e in second.get_asset_check_evaluations()}
    assert checks["beats_champion"] is True and checks["meets_thresholds"] is True

    # 3. A weak student after that loses on the same test split: the run succeeds, the champion is kept and
    # the promotion says so; the check warns.
    third = flow.drop("drop-3.csv", seed=3, **weak)
    assert third.success
    evaluation = metadata(third, "student_evaluation")
    decision = evaluation["promotion"]
    assert decision["champion_run_id"] == better and decision["promote"] is False
    assert decision["challenger_value"] < decision["champion_value"]
    assert decision["num_examples"] == evaluation["num_examples"]  # both scored on the same test rows
    [check] = [e for e in third.get_asset_check_evaluations() if e.check_name == "beats_champion"]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    kept = metadata(third, "student_promotion")
    assert kept["promoted"] is False and kept["outcome"].startswith(f"kept champion {better} (accuracy ")
    assert deploy.current_release(layout) == better

    # 4. A set launched by hand (not a drop) is gated too by default; evaluation.promotion.scope "drops" lets it
    # through, with the loss on the deploy record.
    flow.instance.add_dynamic_partitions("teacher_inputs", ["v1"])
    manual = run_job("distillation_pipeline", {**recipe, "training": {**recipe["training"], **weak}},
                     instance=flow.instance, partition="v1")
    assert manual.success and metadata(manual, "student_promotion")["promoted"] is False
    assert deploy.current_release(layout) == better
    recipe["evaluation"]["promotion"]["scope"] = "drops"
    flow.instance.add_dynamic_partitions("teacher_inputs", ["v2"])
    ungated = run_job("distillation_pipeline", {**recipe, "training": {**recipe["training"], **weak}},
                      instance=flow.instance, partition="v2")
    assert ungated.success
    [check] = [e for e in ungated.get_asset_check_evaluations() if e.check_name == "beats_champion"]
    assert check.passed is False and "not gated" in check.description
    promoted = metadata(ungated, "student_promotion")
    assert promoted["promoted"] is True and promoted["forced"] is True
    assert deploy.current_release(layout) == promoted["run_id"] != better
    assert "evaluation.promotion.scope does not gate it" in deploy.history(layout)[-1]["overrides"][0]


def test_every_model_is_gated_by_default_and_the_scope_narrows_it(recipe):
    from nexa_core.release.promotion import is_gated

    cfg = validate_config(recipe)
    assert is_gated(cfg, "drops-0123456789abcdef") and is_gated(cfg, "v1") and is_gated(cfg)
    recipe["evaluation"]["promotion"] = {"scope": "drops"}
    cfg = validate_config(recipe)
    assert is_gated(cfg, "drops-0123456789abcdef") and not is_gated(cfg, "v1") and not is_gated(cfg)
    recipe["evaluation"]["promotion"] = {"scope": "none"}
    assert not is_gated(validate_config(recipe), "drops-0123456789abcdef")
    recipe["evaluation"]["promotion"] = {"scope": "some"}
    with pytest.raises(NexaError, match="evaluation.promotion.scope"):
        validate_config(recipe)


def test_a_run_tested_on_a_drop_version_finds_its_test_split(tmp_path):
    """Drop versions store each split as a folder of parts (test.parquet/<drop>.parquet), not a file."""
    import json

    from nexa_core.release.promotion import tested_on

    layout = Layout(tmp_path / "scratch", tmp_path / "durable", tmp_path / "shared")
    run_dir = layout.run_dir("student_20261130_120000")
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({"dataset_version": "drops-abc", "accuracy": 0.8}))
    with pytest.raises(NexaError, match="its test split .* is not here"):
        tested_on(layout, "student_20261130_120000")
    split = layout.datasets_dir / "drops-abc" / "test.parquet"
    split.mkdir(parents=True)
    pd.DataFrame({"text": ["a"], "label": [0]}).to_parquet(split / "drop-1.parquet")
    dataset_dir, report = tested_on(layout, "student_20261130_120000")
    assert dataset_dir == layout.datasets_dir / "drops-abc" and report["accuracy"] == 0.8
