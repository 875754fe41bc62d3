"""The promotion gate is one core decision: `nexa deploy` and each line's `promotion` asset both keep a champion
that a new run does not beat on that run's own test split (re-scoring the champion there when no comparison
against it was recorded); `--force` or evaluation.promotion.scope lets it through and the history says so;
thresholds come from the run's own config snapshot."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from nexa_core.common.errors import NexaError
from nexa_core.config import validate_config
from nexa_core.release import deploy, steps
from nexa_core.release.promotion import read_decision
from tests.cli_helpers import nexa
from tests.helpers_runs import make_finished_run, make_layout

CHAMPION, LOSER, WINNER = "tiny_20260101_000000", "tiny-student_20260102_000000", "tiny-student_20260103_000000"
MANUAL = "tiny_20260104_000000"
VERSION = "0123456789abcdef"
TEXTS = ["good movie", "bad movie", "the movie was great", "awful", "a good good movie", "the bad awful movie",
         "was great", "movie", "the good", "a bad", "great great", "awful movie was bad"]


def _finished(layout, recipe, run_id: str, *, decision: dict | None = None, thresholds: dict | None = None,
              accuracy: float = 0.7, promotion: dict | None = None) -> None:
    run_dir = make_finished_run(layout, run_id)
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "macro_f1": accuracy, "loss": 0.5,
                                                      "dataset_version": VERSION, "num_examples": len(TEXTS)}))
    snapshot = validate_config({**recipe, "evaluation": {"thresholds": thresholds or {"accuracy": 0.6},
                                                         "promotion": promotion or {}}})
    (run_dir / "config.yaml").write_text(yaml.safe_dump(snapshot.model_dump(mode="json")))
    if decision is not None:
        (run_dir / "promotion.json").write_text(json.dumps({"challenger_run_id": run_id, **decision}))


def _lost(champion: str) -> dict:
    return {"champion_run_id": champion, "gated": True, "promote": False, "metric": "accuracy", "min_improvement": 0.0,
            "challenger_value": 0.7, "champion_value": 0.8,
            "reason": "challenger accuracy=0.7000 does not beat champion accuracy=0.8000 by more than 0.0"}


def _test_split(layout, champion: str) -> None:
    """The runs' test split, labelled with the champion's own predictions: the champion scores 1.0 on it."""
    from nexa_core.evaluation.evaluate import evaluate_model

    folder = layout.datasets_dir / VERSION
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"version": VERSION, "labels": ["neg", "pos"]}))
    pd.DataFrame({"text": TEXTS, "label": "neg", "label_id": 0}).to_parquet(folder / "test.parquet")
    scored = evaluate_model(layout.run_dir(champion) / "final", folder, layout.scratch / "label", max_length=32)
    predicted = pd.read_parquet(scored["predictions_path"])["predicted"]
    pd.DataFrame({"text": TEXTS, "label": predicted, "label_id": (predicted == "pos").astype(int)}).to_parquet(
        folder / "test.parquet")


@pytest.fixture()
def layout(tmp_path, recipe):
    layout = make_layout(tmp_path)
    _finished(layout, recipe, CHAMPION)
    steps.deploy_run(layout, CHAMPION)
    _test_split(layout, CHAMPION)
    return layout


def _env(layout) -> dict:
    return {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared)}


def test_cli_refuses_a_gated_student_that_lost_and_force_deploys_it_on_the_record(layout, recipe):
    _finished(layout, recipe, LOSER, decision=_lost(CHAMPION))
    proc = nexa("deploy", LOSER, env=_env(layout), check=False)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"nexa deploy: error: kept champion {CHAMPION} (accuracy 0.800 vs 0.700 for {LOSER}")
    assert "--force" in line
    assert deploy.current_release(layout) == CHAMPION and len(deploy.history(layout)) == 1

    nexa("deploy", LOSER, "--force", env=_env(layout))
    assert deploy.current_release(layout) == LOSER
    record = deploy.history(layout)[-1]
    assert record["forced"] is True and any("lost to the champion, deployed by --force" in r for r in record["overrides"])
    assert record["previous_run_id"] == CHAMPION and record["by"] == "CLI"


def test_a_manual_run_that_does_not_beat_the_champion_on_its_test_split_is_kept_out(layout, recipe):
    # No comparison recorded (a `nexa train` run): the champion is scored on the run's test split now.
    _finished(layout, recipe, MANUAL, accuracy=0.9)
    with pytest.raises(steps.ChampionKept, match=rf"kept champion {CHAMPION} \(accuracy 1.000 vs 0.900 for {MANUAL}"):
        steps.deploy_run(layout, MANUAL)
    decision = read_decision(layout, MANUAL)
    assert decision["champion_run_id"] == CHAMPION and decision["champion_value"] == 1.0 and decision["gated"] is True
    assert decision["num_examples"] == len(TEXTS)
    assert deploy.current_release(layout) == CHAMPION and len(deploy.history(layout)) == 1

    steps.deploy_run(layout, MANUAL, force=True)
    assert deploy.current_release(layout) == MANUAL
    assert deploy.history(layout)[-1]["forced"] is True


def test_a_run_that_is_not_gated_by_the_config_deploys_with_the_loss_on_the_record(layout, recipe):
    _finished(layout, recipe, MANUAL, accuracy=0.9, promotion={"scope": "none"})
    steps.deploy_run(layout, MANUAL)
    record = deploy.history(layout)[-1]
    assert deploy.current_release(layout) == MANUAL and record["forced"] is True
    assert "evaluation.promotion.scope does not gate it" in record["overrides"][0]


def test_a_comparison_with_a_champion_that_has_since_changed_is_made_again(layout, recipe):
    _finished(layout, recipe, WINNER, decision={**_lost("tiny_20251231_000000"), "promote": True, "reason": "beats"})
    with pytest.raises(steps.ChampionKept, match=f"kept champion {CHAMPION}"):
        steps.deploy_run(layout, WINNER)
    assert read_decision(layout, WINNER)["champion_run_id"] == CHAMPION
    assert deploy.current_release(layout) == CHAMPION


def test_a_run_without_its_test_split_is_not_compared_unless_forced(layout, recipe):
    _finished(layout, recipe, MANUAL, accuracy=0.9)
    (layout.datasets_dir / VERSION / "test.parquet").unlink()
    with pytest.raises(NexaError, match="cannot compare run .* test split .* pass --force"):
        steps.deploy_run(layout, MANUAL)
    steps.deploy_run(layout, MANUAL, force=True)
    assert deploy.history(layout)[-1]["overrides"][0].startswith(f"not compared with the champion {CHAMPION}")


def test_a_student_that_beat_the_current_champion_deploys_without_force(layout, recipe):
    _finished(layout, recipe, WINNER, decision={**_lost(CHAMPION), "promote": True, "reason": "beats"})
    steps.deploy_run(layout, WINNER)
    assert deploy.current_release(layout) == WINNER and "forced" not in deploy.history(layout)[-1]


def test_an_ungated_decision_deploys_with_the_loss_on_the_record(layout, recipe):
    _finished(layout, recipe, LOSER, decision={**_lost(CHAMPION), "gated": False})
    steps.deploy_run(layout, LOSER)
    assert deploy.current_release(layout) == LOSER and deploy.history(layout)[-1]["forced"] is True


def test_thresholds_come_from_the_runs_own_snapshot(layout, recipe):
    _finished(layout, recipe, LOSER, thresholds={"accuracy": 0.9})
    assert steps.check_gates(layout, LOSER) == ["accuracy 0.700 < 0.900 (evaluation.thresholds.accuracy)"]
    with pytest.raises(NexaError, match=r"fails its evaluation gates: accuracy 0.700 < 0.900 \(evaluation\.thresholds\.accuracy\); "
                                          r"not deploying"):
        steps.deploy_run(layout, LOSER)
    (layout.run_dir(LOSER) / "config.yaml").unlink()
    with pytest.raises(NexaError, match="has no config snapshot"):
        steps.check_gates(layout, LOSER)
