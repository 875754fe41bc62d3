"""One deployment, one place to see it: `nexa deploy` prints the summary of what current_model serves, and the
`current_model` asset shows the same summary, observed by `current_model_sensor` when the CLI moved the pointer
(a deploy or a rollback) and by "Observe" on its page."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from nexa_core.release import deploy
from nexa_core.release.packaging import build_package
from nexa_dagster.defs.release.deployment import current_model, current_model_sensor
from tests.cli_helpers import nexa_in_process
from tests.dagster_helpers import latest_deployment, project_resources, tick_sensor
from tests.helpers_runs import make_finished_run

A, B = "tiny_20260101_000000", "tiny-student_20260102_000000"


def _released(layout, run_id: str, accuracy: float) -> None:
    run_dir = make_finished_run(layout, run_id)
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "macro_f1": accuracy - 0.1, "loss": 0.4,
                                                      "dataset_version": "0123456789abcdef", "num_examples": 40}))
    build_package(layout, run_id)


@pytest.fixture
def env(recipe):
    from nexa_core.common.layout import Layout
    from nexa_core.config import validate_config

    layout = Layout.from_storage(validate_config(recipe).storage)
    _released(layout, A, 0.8)
    _released(layout, B, 0.9)
    return layout, {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable),
                    "NEXA_SHARED": str(layout.shared)}


def test_nexa_deploy_prints_what_is_deployed_who_deployed_it_and_what_came_before(env):
    layout, variables = env
    assert nexa_in_process("deploy", env=variables)[1].strip() == "nothing deployed"
    deploy.deploy(layout, A)
    deploy.deploy(layout, B, origin={"by": "Dagster", "dagster_run_id": "0f1e2d3c", "line": "student"})
    code, out, _ = nexa_in_process("deploy", env=variables)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == f"{layout.deploy_dir / 'current_model'} -> {B} (student)"
    assert lines[1] == "  metrics:  accuracy 0.9000, macro_f1 0.8000, loss 0.4000 (test split, 40 rows)"
    assert lines[2] == "  dataset:  0123456789abcdef"
    assert lines[3].startswith("  deployed: 20") and lines[3].endswith(" by Dagster run 0f1e2d3c")
    assert lines[4] == f"  previous: {A}"

    code, out, _ = nexa_in_process("deploy", "--rollback", env=variables)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == f"rolled back to {A}" and lines[1].endswith(f"-> {A} (trained)")
    assert lines[4].endswith(" by CLI (rollback)") and lines[5] == f"  previous: {B}"


def test_the_sensor_observes_current_model_when_the_cli_moves_the_pointer(env, recipe):
    layout, variables = env
    instance = dg.DagsterInstance.ephemeral()

    def tick():
        result = tick_sensor(current_model_sensor, instance, recipe)
        for event in getattr(result, "asset_events", None) or []:
            instance.report_runless_asset_event(event)  # what the daemon does with a sensor's asset events
        return result

    deploy.deploy(layout, A)
    assert isinstance(tick(), dg.SensorResult)
    assert latest_deployment(instance)["run_id"] == A and latest_deployment(instance)["accuracy"] == 0.8
    assert isinstance(tick(), dg.SkipReason)  # unchanged: no new observation

    # B's test split is not here, so it cannot be compared with the champion: only --force deploys it.
    code, _, err = nexa_in_process("deploy", B, env=variables)
    assert code == 2 and "cannot compare run" in err and "--force" in err
    assert nexa_in_process("deploy", B, "--force", env=variables)[0] == 0
    tick()
    shown = latest_deployment(instance)
    assert shown["run_id"] == B and shown["by"] == "CLI" and shown["previous_run_id"] == A and shown["line"] == "student"
    assert shown["forced"] is True and "not compared with the champion" in shown["overrides"][0]

    assert nexa_in_process("deploy", "--rollback", env=variables)[0] == 0
    tick()
    shown = latest_deployment(instance)
    assert shown["run_id"] == A and shown["action"] == "rollback" and shown["previous_run_id"] == B


def test_observing_the_asset_reads_the_pointer(env, recipe):
    layout, _ = env
    deploy.deploy(layout, B)
    instance = dg.DagsterInstance.ephemeral()
    job = dg.Definitions(assets=[current_model], resources={"nexa": project_resources(recipe)["nexa"]},
                         jobs=[dg.define_asset_job("observe", selection=[current_model.key])]).resolve_job_def("observe")
    assert job.execute_in_process(instance=instance).success
    shown = latest_deployment(instance)
    assert shown["run_id"] == B and shown["accuracy"] == 0.9 and shown["dataset_version"] == "0123456789abcdef"
