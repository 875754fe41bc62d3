"""A study on a real instance, driven by the daemon: `dagster job execute -j tune_study` starts it (as CI or a
script would; the launchpad runs the same job), then nobody at the keyboard. The daemon's `hpo_trials_sensor`
queues one run per trial slot, the queue starts them together, the `gpu` pool of the project's dagster.yaml (one
slot) lets one trial train at a time, and `tuned_release_sensor` releases the best trial once every slot ran:
evaluation, thresholds and champion gate, deployment. Every process the daemon started is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.release import deploy
from tests.cli_helpers import ROOT, write_recipe
from tests.process_helpers import group_alive, instance_home, stop_group
from tests.test_tune_dagster import study_recipe

pytestmark = pytest.mark.slow
DEADLINE_S = 480  # two sensor intervals, two queued trial runs and a release run on 2 CPU cores


def _step_window(instance, run_id: str, step: str) -> tuple[float, float]:
    import dagster as dg

    times = {e.dagster_event.event_type: e.timestamp for e in instance.all_logs(run_id)
             if e.dagster_event and e.step_key == step and e.dagster_event.event_type in
             (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)}
    return times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]


def test_the_daemon_runs_a_study_under_the_gpu_pool_and_releases_its_best_trial(tiny_model, tiny_csv, tmp_path):
    import dagster as dg

    home = tmp_path / "home"
    instance_home(home, ROOT / "dagster.yaml")  # its queue and its one-slot gpu pool, as the project ships them
    recipe = study_recipe(tiny_model, tiny_csv, tmp_path / "store", max_trials=2)
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_CONFIG": str(write_recipe(recipe, tmp_path / "tiny.yaml")),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    bin_dir = Path(sys.executable).parent
    started = subprocess.run([str(bin_dir / "dagster"), "job", "execute", "-m", "nexa_dagster.definitions", "-j",
                              "tune_study"], cwd=home, env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]

    log = open(tmp_path / "daemon.log", "wb")
    daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-m", "nexa_dagster.definitions"], cwd=home,
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + DEADLINE_S
            while not [r for r in instance.get_runs(dg.RunsFilter(job_name="tuned_release")) if r.is_finished]:
                if time.monotonic() > deadline:
                    states = [(r.job_name, r.status.value) for r in instance.get_runs()]
                    pytest.fail(f"no finished tuned_release after {DEADLINE_S}s: {states}\n"
                                f"{(tmp_path / 'daemon.log').read_text(errors='replace')[-4000:]}")
                time.sleep(3)
            slots = instance.get_dynamic_partitions("hpo_trials")
            trials = instance.get_run_records(dg.RunsFilter(job_name="tune_trial"))
            [release] = instance.get_runs(dg.RunsFilter(job_name="tuned_release"))
            windows = sorted(_step_window(instance, r.dagster_run.run_id, "hpo_trials") for r in trials
                             if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS)
            runs = sorted((r.start_time, r.end_time) for r in trials)
            promotion = instance.get_latest_materialization_event(dg.AssetKey("tuned_promotion"))
            promoted = {k: v.value for k, v in promotion.asset_materialization.metadata.items()}
    finally:
        stop_group(daemon)
        log.close()
    assert not group_alive(daemon.pid), "the daemon left processes behind"

    assert slots == [f"tiny-tune-trial-{i:03d}" for i in range(2)]
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in trials) == slots
    assert {r.dagster_run.tags.get("dagster/sensor_name") for r in trials} == {"hpo_trials_sensor"}
    assert [r.dagster_run.status for r in trials] == [dg.DagsterRunStatus.SUCCESS] * 2
    assert runs[1][0] < runs[0][1], f"the queue did not start the trial runs together: {runs}"
    for first, second in zip(windows, windows[1:]):  # so only the pool kept their training apart
        assert second[0] >= first[1], f"two trials trained at once on a one-slot gpu pool: {windows}"

    study = optuna.load_study(study_name="tiny-tune",
                              storage=f"sqlite:///{tmp_path / 'store/durable/tuning/studies.db'}")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 2 and len({tuple(t.params.values()) for t in done}) == 2
    best = max(done, key=lambda t: (t.value, -t.number))

    assert release.status == dg.DagsterRunStatus.SUCCESS and release.tags["dagster/sensor_name"] == "tuned_release_sensor"
    layout = Layout.from_storage(validate_config(recipe).storage)
    assert promoted["promoted"] is True and promoted["run_id"] == best.user_attrs["run_id"]
    assert promoted["outcome"].startswith(f"deployed {best.user_attrs['run_id']}")  # nothing served before it
    assert deploy.current_release(layout) == best.user_attrs["run_id"]
