"""A study in Dagster: `tune_study` starts it and registers one `hpo_trials` partition per trial slot, the sensor
launches a run per slot, each trial is an ordinary run told to the study, and the best trial goes through the
tuned release line: evaluation, `meets_thresholds` and the champion gate. In-process here; the daemon-driven
version on a real instance (queue, `gpu` pool) is tests/test_tune_daemon.py."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from tests.conftest import tiny_recipe
from tests.dagster_helpers import metadata, run_job, tick_sensor


def study_recipe(tiny_model, tiny_csv, root, **tune) -> dict:
    # Twelve steps, a validation every four: a few seconds a trial on CPU, three points for the pruner.
    recipe = tiny_recipe(tiny_model, tiny_csv, root, max_steps=12, checkpoint={"every_steps": 4, "keep": 1})
    recipe["telemetry"] = {"enabled": False}
    recipe["evaluation"] = {"thresholds": {"accuracy": 0.4}}
    recipe["tune"] = {"seed": 7, "max_trials": 2, **tune}
    return recipe


def _failure(result) -> str:
    [event] = [e for e in result.all_events if e.is_step_failure]
    return event.event_specific_data.user_failure_data.description


def test_a_study_runs_its_slots_and_its_best_trial_meets_the_champion_gate(tiny_model, tiny_csv, tmp_path):
    import dagster as dg

    from nexa_core.release import deploy
    from nexa_core.release.steps import deploy_run
    from nexa_dagster.defs.tuning.sensors import hpo_trials_sensor, tuned_release_sensor

    recipe = study_recipe(tiny_model, tiny_csv, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    started = run_job("tune_study", recipe, instance=instance)
    assert started.success
    plan = metadata(started, "hpo_study")
    slots = ["tiny-tune-trial-000", "tiny-tune-trial-001"]
    assert instance.get_dynamic_partitions("hpo_trials") == slots
    assert plan["study"] == "tiny-tune" and plan["trial_slots"] == 2
    assert plan["dataset_version"] == metadata(started, "training_dataset")["dataset_version"]

    launched = tick_sensor(hpo_trials_sensor, instance, recipe)
    assert [r.partition_key for r in launched.run_requests] == slots and launched.cursor == "2"
    assert isinstance(tick_sensor(hpo_trials_sensor, instance, recipe, cursor="2"), dg.SkipReason)
    waiting = tick_sensor(tuned_release_sensor, instance, recipe)
    assert "2 of 2 trial slots not finished" in waiting.skip_message

    trials = {}
    for key in slots:
        result = run_job("tune_trial", recipe, instance=instance, partition=key)
        assert result.success, _failure(result)
        trials[key] = (result.run_id, metadata(result, "hpo_trials"))
    study = optuna.load_study(study_name="tiny-tune", storage=f"sqlite:///{tmp_path / 'durable/tuning/studies.db'}")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 2 and done[0].params != done[1].params
    for trial in done:  # each trial knows its slot and the Dagster run that trained it, and is an ordinary run
        dagster_run, meta = trials[trial.user_attrs["slot"]]
        assert trial.user_attrs["dagster_run_id"] == dagster_run and meta["trial_number"] == trial.number
        assert meta["run_id"] == trial.user_attrs["run_id"] and meta["validation_accuracy"] == trial.value
    layout = Layout.from_storage(validate_config(recipe).storage)
    for trial in done:
        assert (layout.manifests_dir / f"{trial.user_attrs['run_id']}.json").is_file()

    request = tick_sensor(tuned_release_sensor, instance, recipe)
    assert isinstance(request, dg.RunRequest) and request.tags["nexa/study"] == "tiny-tune"

    # A champion serves already (the other trial, forced in); the deployment's policy asks for a win by 0.99.
    best = max(done, key=lambda t: (t.value, -t.number))
    other = next(t for t in done if t.number != best.number).user_attrs["run_id"]
    deploy_run(layout, other, force=True)
    recipe["evaluation"]["promotion"] = {"min_improvement": 0.99}
    released = run_job("tuned_release", recipe, instance=instance)
    assert released.success
    assert metadata(released, "tuned_model")["run_id"] == best.user_attrs["run_id"]
    assert metadata(released, "tuned_model")["best_trial"] == best.number
    [check] = released.get_asset_check_evaluations()
    assert check.check_name == "meets_thresholds" and check.passed
    promotion = metadata(released, "tuned_promotion")
    assert promotion["promoted"] is False and promotion["outcome"].startswith("kept champion")
    assert deploy.current_release(layout) == other


def test_a_slot_of_an_unknown_study_fails_in_one_line(recipe):
    import dagster as dg

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("hpo_trials", ["ghost-trial-000"])
    result = run_job("tune_trial", recipe, instance=instance, partition="ghost-trial-000")
    assert not result.success
    assert _failure(result).startswith("tune.study ghost: no such study in sqlite:///")


def test_slot_keys_and_a_study_whose_data_changed():
    from nexa_core.tuning.handoff import slot_key
    from nexa_core.tuning.recipe import record_start
    from nexa_core.tuning.slots import slot_study

    assert slot_study(slot_key("rt-lr.v2", 7)) == "rt-lr.v2" and slot_key("s", 7) == "s-trial-007"
    with pytest.raises(NexaError, match="not a trial slot"):
        slot_study("rt-lr")
    cfg = validate_config({"data": {"path": "x.csv"}})
    study = optuna.create_study(study_name="s")
    record_start(study, cfg, "aaaa")
    assert study.user_attrs["recipe"]["tune"]["study"] == "s" and "storage" not in study.user_attrs["recipe"]
    with pytest.raises(NexaError, match="started on dataset version aaaa, but the data now gives bbbb"):
        record_start(study, cfg, "bbbb")
