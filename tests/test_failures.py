"""Failures read as reasons: a missed gate says which metric missed which threshold and how to change it (the
check's description, its first metadata row and the run's failure); a NexaError inside any asset, check or op
fails the step as a dg.Failure whose message is that one line, with no NexaError traceback; anything else keeps
its traceback."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.evaluation.report import EvaluationReport
from nexa_dagster import definitions
from nexa_dagster.defs.release.gates import threshold_check
from nexa_dagster.defs.release.lines import TRAINED_LINE
from nexa_dagster.failures import refusals_as_failures
from tests.dagster_helpers import project_resources, run_job

RUN = "tiny_20260101_000000"
MISSED = "accuracy 0.600 < 0.700 (evaluation.thresholds.accuracy); train longer or on more data, or lower the threshold"


def _gate_run(recipe: dict, scores: dict, thresholds: dict):
    """The real `meets_thresholds` check on an evaluation_report of `scores`, judged by the run's own snapshot."""
    run_dir = Layout(**{tier: Path(path) for tier, path in recipe["storage"].items()}).run_dir(RUN)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(json.dumps({"evaluation": {"thresholds": thresholds}}))

    @dg.asset(name="evaluation_report")
    def report() -> EvaluationReport:
        return EvaluationReport(run_id=RUN, values=scores)

    @dg.asset(deps=["evaluation_report"])
    def downstream() -> None:
        return None

    return dg.materialize([report, downstream, threshold_check(TRAINED_LINE)], raise_on_error=False,
                          resources={"nexa": project_resources(recipe)["nexa"]})


def test_a_missed_threshold_is_the_checks_description_first_row_and_the_runs_failure(recipe):
    result = _gate_run(recipe, {"accuracy": 0.6, "macro_f1": 0.9}, {"accuracy": 0.7, "macro_f1": 0.7})
    [check] = result.get_asset_check_evaluations()
    assert check.passed is False and check.description == MISSED
    assert list(check.metadata)[0] == "reason" and check.metadata["reason"].value == MISSED
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data.description == MISSED
    assert failure.step_failure_data.error.message.strip() == f"dagster._core.definitions.events.Failure: {MISSED}"
    assert "downstream" not in {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def test_a_met_threshold_says_by_how_much(recipe):
    passed = _gate_run(recipe, {"accuracy": 0.8}, {"accuracy": 0.7})
    assert passed.success
    [check] = passed.get_asset_check_evaluations()
    assert check.passed and check.description == "meets evaluation.thresholds: accuracy 0.800 >= 0.700"


def test_an_unreported_metric_says_to_drop_its_threshold(recipe):
    result = _gate_run(recipe, {"accuracy": 0.8}, {"agreement": 0.5})
    [check] = result.get_asset_check_evaluations()
    assert check.description == ("agreement not reported, minimum 0.500 (evaluation.thresholds.agreement); remove the "
                                 "threshold: this model's evaluation does not report that metric")


def test_a_refusal_inside_an_asset_fails_the_step_with_its_line_and_no_traceback_of_its_own(recipe):
    recipe["data"]["label_column"] = "no_such_column"  # nexa_core.data refuses it inside training_dataset
    result = run_job("dataset_only", recipe, selection=["training_dataset"])
    assert not result.success
    [failure] = result.get_step_failure_events()
    data = failure.step_failure_data
    line = data.user_failure_data.description
    assert "no_such_column" in line and "\n" not in line
    error = data.error
    assert error.cls_name == "Failure" and error.message == f"dagster._core.definitions.events.Failure: {line}\n"
    # The NexaError and the nexa_core frames that raised it are gone: no cause, no context, no frame of theirs.
    assert error.cause is None and error.context is None
    assert not any("nexa_core" in frame for frame in error.stack)


def test_any_other_exception_keeps_its_traceback():
    @dg.asset
    @refusals_as_failures
    def broken() -> None:
        raise ValueError("a bug")

    [failure] = dg.materialize([broken], raise_on_error=False).get_step_failure_events()
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "ValueError" and any("raise ValueError" in frame for frame in cause.stack)


def test_generator_bodies_yield_their_events_and_refuse_the_same_way():
    @dg.asset_check(asset="thing")
    @refusals_as_failures
    def gate():
        yield dg.AssetCheckResult(passed=True)
        raise NexaError("thing.size: too small; make it bigger")

    @dg.asset
    def thing() -> int:
        return 1

    result = dg.materialize([thing, gate], raise_on_error=False)
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.user_failure_data.description == "thing.size: too small; make it bigger"


def _bodies() -> dict:
    defs, bodies = definitions.defs, {}
    for asset in defs.assets:
        if isinstance(asset, dg.AssetsDefinition) and asset.is_executable:
            bodies[f"asset {asset.node_def.name}"] = asset.node_def.compute_fn.decorated_fn
        elif isinstance(asset, dg.SourceAsset) and asset.is_observable:
            bodies[f"observed source {asset.key.to_user_string()}"] = asset.observe_fn
    for check in defs.asset_checks:
        bodies[f"check {check.node_def.name}"] = check.node_def.compute_fn.decorated_fn
    for job in defs.jobs:
        if isinstance(job, dg.JobDefinition):
            for op in job.all_node_defs:
                if isinstance(op, dg.OpDefinition):
                    bodies[f"op {op.name} of {job.name}"] = op.compute_fn.decorated_fn
    return bodies


BODIES = _bodies()


@pytest.mark.parametrize("name", list(BODIES))
def test_every_asset_check_and_op_turns_refusals_into_failures(name):
    assert getattr(BODIES[name], "refusals_as_failures", False), f"{name} lacks @refusals_as_failures (nexa_dagster/failures.py)"
