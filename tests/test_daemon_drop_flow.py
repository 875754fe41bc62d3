"""Nobody at the keyboard: the real Dagster daemon (`dagster-daemon run`, the project's dagster.yaml with its run
queue and gpu pool) notices a file dropped into the watched folder and carries it, by its sensors and declarative
automation alone, to a deployed student: ingest_drop -> incremental_dataset -> distillation_pipeline on
teacher-input set drops-<version> -> gated release. A malformed file next to it gets no run. Every process the
daemon started is stopped (by process group)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.release import deploy
from tests.cli_helpers import ROOT, write_recipe
from tests.process_helpers import group_alive, instance_home, stop_group
from tests.tiny import write_reviews_csv

pytestmark = pytest.mark.slow
DEADLINE_S = 480  # three sensor intervals (30 s each) plus three queued runs on 2 CPU cores


@pytest.fixture
def daemon(recipe, tmp_path):
    home = tmp_path / "home"
    instance_home(home, ROOT / "dagster.yaml")
    (tmp_path / "raw").mkdir()
    recipe["data"]["drops"] = {"folder": str(tmp_path / "raw")}
    recipe["distill"] = {"student_layers": 1, "top_k": 2}
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_CONFIG": str(write_recipe(recipe, tmp_path / "tiny.yaml")),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "nexa_dagster.definitions"],
                            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield home, tmp_path, recipe
    finally:
        stop_group(proc)
        log.close()
        assert not group_alive(proc.pid), "the daemon left processes behind"


def _runs(instance) -> dict[str, list]:
    by_job: dict[str, list] = {}
    for run in instance.get_runs():
        by_job.setdefault(run.job_name, []).append(run)
    return by_job


def test_a_dropped_file_becomes_a_deployed_student_by_the_daemon_alone(daemon):
    import dagster as dg

    home, tmp_path, recipe = daemon
    frame = pd.read_csv(write_reviews_csv(tmp_path / "src.csv", rows=240, seed=7))
    frame.to_csv(tmp_path / "raw" / "drop-1.csv", index=False)
    (tmp_path / "raw" / "notes.txt").write_text("not a data drop")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            runs = _runs(instance)
            done = [r for r in runs.get("distillation_pipeline", []) if r.is_finished]
            if done:
                break
            if time.monotonic() > deadline:
                states = {job: [r.status.value for r in rs] for job, rs in runs.items()}
                log = (tmp_path / "daemon.log").read_text(errors="replace")[-4000:]
                pytest.fail(f"no finished distillation run after {DEADLINE_S}s; runs: {states}\n{log}")
            time.sleep(3)

        [ingest] = runs["ingest_drop"]  # the malformed notes.txt got no run
        assert ingest.tags["dagster/partition"] == "drop-1.csv" and ingest.status == dg.DagsterRunStatus.SUCCESS
        built = [r for job, rs in runs.items() if job.startswith("__ASSET_JOB") for r in rs
                 if r.status == dg.DagsterRunStatus.SUCCESS]
        assert built, f"incremental_dataset was not built by the automation sensor: {list(runs)}"
        [distill] = done
        assert distill.status == dg.DagsterRunStatus.SUCCESS, distill.status
        key = distill.tags["dagster/partition"]
        assert key.startswith("drops-") and instance.get_dynamic_partitions("teacher_inputs") == [key]

        deployed = instance.get_latest_materialization_event(dg.AssetKey("student_promotion"))
        run_id = deployed.asset_materialization.metadata["run_id"].value
    layout = Layout.from_storage(validate_config(recipe).storage)
    assert deploy.current_release(layout) == run_id  # the drop's student serves now
    decision = json.loads((layout.run_dir(run_id) / "promotion.json").read_text())
    assert decision["gated"] is True and decision["reason"] == "no champion deployed"
    assert decision["dataset_version"] == key.removeprefix("drops-")
