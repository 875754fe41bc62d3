"""The promotion gate is one core decision: `nexa deploy` and the `deployed_model` asset both refuse a gated run
that lost to the champion (or was compared with a champion that has since changed); `--force` deploys it anyway
and the history says so; thresholds come from the run's own config snapshot."""

from __future__ import annotations

import json

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.release import deploy, steps
from tests.cli_helpers import nexa
from tests.helpers_runs import make_finished_run, make_layout

CHAMPION, LOSER, WINNER = "tiny_20260101_000000", "tiny-student_20260102_000000", "tiny-student_20260103_000000"


def _finished(layout, run_id: str, *, decision: dict | None = None, thresholds: dict | None = None) -> None:
    run_dir = make_finished_run(layout, run_id)
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.7, "macro_f1": 0.7, "loss": 0.5}))
    (run_dir / "config.yaml").write_text(json.dumps({"evaluation": {"thresholds": thresholds or {"accuracy": 0.6}}}))
    if decision is not None:
        (run_dir / "promotion.json").write_text(json.dumps({"challenger_run_id": run_id, **decision}))


def _lost(champion: str) -> dict:
    return {"champion_run_id": champion, "gated": True, "promote": False,
            "reason": "challenger accuracy=0.7000 does not beat champion accuracy=0.8000 by more than 0.0"}


@pytest.fixture()
def layout(tmp_path):
    layout = make_layout(tmp_path)
    _finished(layout, CHAMPION)
    steps.deploy_run(layout, CHAMPION)
    return layout


def _env(layout) -> dict:
    return {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared)}


def test_cli_refuses_a_gated_student_that_lost_and_force_deploys_it_on_the_record(layout):
    _finished(layout, LOSER, decision=_lost(CHAMPION))
    proc = nexa("deploy", LOSER, env=_env(layout), check=False)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()[-1:]
    assert f"{LOSER} lost to the champion" in line and "--force" in line and "Traceback" not in proc.stderr
    assert deploy.current_release(layout) == CHAMPION and len(deploy.history(layout)) == 1

    nexa("deploy", LOSER, "--force", env=_env(layout))
    assert deploy.current_release(layout) == LOSER
    record = deploy.history(layout)[-1]
    assert record["forced"] is True and any("lost to the champion" in reason for reason in record["overrides"])
    assert record["previous_run_id"] == CHAMPION


def test_a_comparison_with_a_champion_that_has_since_changed_is_refused(layout):
    _finished(layout, WINNER, decision={**_lost("tiny_20251231_000000"), "promote": True, "reason": "beats"})
    with pytest.raises(NexaError, match=r"deployed model changed from tiny_20251231_000000 to tiny_20260101_000000"):
        steps.deploy_run(layout, WINNER)
    assert deploy.current_release(layout) == CHAMPION


def test_a_student_that_beat_the_current_champion_deploys_without_force(layout):
    _finished(layout, WINNER, decision={**_lost(CHAMPION), "promote": True, "reason": "beats"})
    steps.deploy_run(layout, WINNER)
    assert deploy.current_release(layout) == WINNER and "forced" not in deploy.history(layout)[-1]


def test_an_ungated_decision_is_recorded_only(layout):
    _finished(layout, LOSER, decision={**_lost(CHAMPION), "gated": False})
    steps.deploy_run(layout, LOSER)
    assert deploy.current_release(layout) == LOSER


def test_thresholds_come_from_the_runs_own_snapshot(layout):
    _finished(layout, LOSER, thresholds={"accuracy": 0.9})
    assert steps.check_gates(layout, LOSER) == ["accuracy 0.700 < 0.900 (evaluation.thresholds.accuracy)"]
    with pytest.raises(NexaError, match=r"fails its evaluation gates: accuracy 0.700 < 0.900 \(evaluation\.thresholds\.accuracy\); "
                                          r"not deploying"):
        steps.deploy_run(layout, LOSER)
    (layout.run_dir(LOSER) / "config.yaml").unlink()
    with pytest.raises(NexaError, match="has no config snapshot"):
        steps.check_gates(layout, LOSER)
