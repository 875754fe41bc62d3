"""The issue's case end to end with tiny models: a deployed model is not replaced by a worse `training_pipeline`
run whose thresholds were lowered for it (the promotion keeps the champion and the run succeeds); `nexa deploy`
refuses the worse run in one line, `--force` deploys it on the record, and `current_model` names the served
model after each step, rollback included."""

from __future__ import annotations

import dagster as dg
import pytest

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.release import deploy
from nexa_dagster.defs.release.deployment import current_model_sensor
from tests.cli_helpers import nexa_in_process
from tests.dagster_helpers import latest_deployment, metadata, run_job, tick_sensor

pytestmark = pytest.mark.slow


def test_a_worse_training_keeps_the_champion_and_only_force_replaces_it(recipe):
    layout = Layout.from_storage(validate_config(recipe).storage)
    env = {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared)}
    instance = dg.DagsterInstance.ephemeral()

    def observe() -> dict:  # one sensor tick, its observation recorded as the daemon does
        for event in getattr(tick_sensor(current_model_sensor, instance, recipe), "asset_events", None) or []:
            instance.report_runless_asset_event(event)
        return latest_deployment(instance)

    good = run_job("training_pipeline", recipe, instance=instance)
    assert good.success
    champion = metadata(good, "trained_model")["run_id"]
    accuracy = metadata(good, "evaluation_report")["accuracy"]
    shown = latest_deployment(instance)
    assert shown["run_id"] == champion and shown["accuracy"] == accuracy and shown["by"] == "Dagster"

    # A model that cannot learn, its gate lowered so that only the champion comparison stands in its way.
    worse = {**recipe, "training": {**recipe["training"], "optimizer": {"lr": 1e-12}},
             "evaluation": {"thresholds": {"accuracy": 0.0}}}
    result = run_job("training_pipeline", worse, instance=instance)
    assert result.success  # keeping the champion is an outcome, not a failure
    loser = metadata(result, "trained_model")["run_id"]
    kept = metadata(result, "promotion")
    assert kept["promoted"] is False and kept["outcome"].startswith(f"kept champion {champion} (accuracy {accuracy:.3f} vs")
    assert kept["champion_value"] > kept["challenger_value"]
    assert deploy.current_release(layout) == champion and latest_deployment(instance)["run_id"] == champion

    code, _, err = nexa_in_process("deploy", loser, env=env)
    assert code == 2 and err.count("\n") == 1 and f"kept champion {champion}" in err and "--force" in err
    assert deploy.current_release(layout) == champion

    code, out, _ = nexa_in_process("deploy", loser, "--force", env=env)
    assert code == 0 and deploy.current_release(layout) == loser
    assert deploy.history(layout)[-1]["forced"] is True
    shown = observe()
    assert shown["run_id"] == loser and shown["forced"] is True and shown["previous_run_id"] == champion
    assert any("lost to the champion, deployed by --force" in reason for reason in shown["overrides"])
    assert "  forced:   " in out

    assert nexa_in_process("deploy", "--rollback", env=env)[0] == 0
    shown = observe()
    assert shown["run_id"] == champion and shown["action"] == "rollback" and shown["accuracy"] == accuracy
