"""Champion/challenger promotion: the core decision, and the drop flow end to end with tiny models (a worse
challenger is not deployed, a better one is)."""

from __future__ import annotations

import pandas as pd
import pytest

from nexa_core import deploy
from nexa_core.config import PromotionConfig, validate_config
from nexa_core.errors import NexaError
from nexa_core.layout import Layout
from nexa_core.promotion import compare
from tests.dagster_helpers import metadata, run_job
from tests.tiny import write_reviews_csv

FLOW = ["incremental_dataset", "challenger_model", "challenger_evaluation", "challenger_run_manifest",
        "challenger_model_package", "challenger_deployed_model"]


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


def _drop(recipe, tmp_path, name, rows, seed):
    frame = pd.read_csv(write_reviews_csv(tmp_path / f"src-{seed}.csv", rows=rows, seed=seed))
    frame["review"] = frame["review"] + f" d{seed}"  # new texts: not duplicates of earlier drops
    frame.to_csv(tmp_path / "raw" / name, index=False)


def _flow(recipe, instance, tmp_path, name, seed, **training):
    _drop(recipe, tmp_path, name, rows=240, seed=seed)
    instance.add_dynamic_partitions("raw_drops", [name])
    assert run_job("ingest_drop", recipe, instance=instance, partition=name).success
    step = {**recipe, "training": {**recipe["training"], **training}}
    return run_job("drop_flow", step, instance=instance, selection=FLOW)


@pytest.mark.slow
def test_a_worse_challenger_is_not_deployed_and_a_better_one_is(recipe, tmp_path):
    import dagster as dg

    (tmp_path / "raw").mkdir()
    recipe["data"]["drops"] = {"folder": str(tmp_path / "raw")}
    recipe["evaluation"]["thresholds"] = {"accuracy": 0.0}  # isolate the champion/challenger gate
    recipe["evaluation"]["promotion"] = {"metric": "accuracy", "min_improvement": 0.0}
    layout = Layout.from_storage(validate_config(recipe).storage)
    instance = dg.DagsterInstance.ephemeral()
    weak = {"max_steps": 1, "optimizer": {"lr": 1e-6}}  # one tiny step: about chance accuracy

    # 1. Nothing deployed: the first (weak) challenger becomes the champion.
    first = _flow(recipe, instance, tmp_path, "drop-1.csv", seed=1, **weak)
    assert first.success
    champion = metadata(first, "challenger_deployed_model")["run_id"]
    assert deploy.current_release(layout) == champion
    weak_accuracy = metadata(first, "challenger_evaluation")["accuracy"]

    # 2. A well-trained challenger beats it on the same (new) test split: promoted, comparison recorded.
    second = _flow(recipe, instance, tmp_path, "drop-2.csv", seed=2)
    assert second.success
    evaluation = metadata(second, "challenger_evaluation")
    decision = evaluation["promotion"]
    assert decision["champion_run_id"] == champion and decision["promote"] is True
    assert decision["challenger_value"] == evaluation["accuracy"] > decision["champion_value"]
    deployed = metadata(second, "challenger_deployed_model")
    assert deployed["previous_run_id"] == champion and deployed["promotion"]["promote"] is True
    better = deployed["run_id"]
    assert deploy.current_release(layout) == better != champion
    checks = {e.check_name: e.passed for e in second.get_asset_check_evaluations()}
    assert checks["beats_champion"] is True and checks["meets_thresholds"] is True

    # 3. A weak challenger after that loses on the same test split: blocked by the check, nothing deployed.
    third = _flow(recipe, instance, tmp_path, "drop-3.csv", seed=3, **weak)
    evaluation = metadata(third, "challenger_evaluation")
    decision = evaluation["promotion"]
    assert decision["champion_run_id"] == better and decision["promote"] is False
    assert decision["challenger_value"] < decision["champion_value"]
    assert decision["num_examples"] == evaluation["num_examples"]  # both scored on the same test rows
    checks = {e: c for e, c in ((e.check_name, e) for e in third.get_asset_check_evaluations())}
    assert checks["beats_champion"].passed is False
    materialized = {e.asset_key.path[-1] for e in third.get_asset_materialization_events()}
    assert not materialized & {"challenger_model_package", "challenger_deployed_model"}
    assert deploy.current_release(layout) == better
    assert weak_accuracy < decision["champion_value"]
