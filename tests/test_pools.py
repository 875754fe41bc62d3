"""The `gpu` pool on a real instance configured by the project's dagster.yaml: two concurrent
`dagster job execute` runs of a step in pool `gpu` do not overlap (and do overlap with two slots), and neither
do two queued runs that the daemon starts together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nexa_dagster.definitions import defs
from tests.cli_helpers import ROOT
from tests.process_helpers import instance_home

pytestmark = pytest.mark.slow


def _two_runs(tmp_path: Path, name: str, limit: int | None) -> list[tuple[float, float]]:
    home = tmp_path / name
    instance_home(home, ROOT / "dagster.yaml")  # with its tables: the two runs would race to create them
    if limit is not None:
        config = yaml.safe_load((home / "dagster.yaml").read_text())
        config["concurrency"]["pools"]["default_limit"] = limit
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    times = home / "times.txt"
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_TEST_TIMES": str(times), "PYTHONPATH": str(ROOT)}
    dagster = Path(sys.executable).parent / "dagster"
    cmd = [str(dagster), "job", "execute", "-m", "tests.pool_location", "-j", "gpu_job"]
    procs = [subprocess.Popen(cmd, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for _ in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]
    rows = [line.split() for line in times.read_text().splitlines()]
    assert len(rows) == 2
    return sorted((float(start), float(end)) for _, start, end in rows)


def test_the_project_pool_serialises_gpu_steps_across_runs(tmp_path):
    first, second = _two_runs(tmp_path, "one-slot", limit=None)  # the project's dagster.yaml as it is
    assert second[0] >= first[1], f"gpu steps overlapped: {first} {second}"
    # Control: with two slots the same two runs do overlap, so the check above can fail.
    first, second = _two_runs(tmp_path, "two-slots", limit=2)
    assert second[0] < first[1], f"expected overlap with 2 slots: {first} {second}"


def _claim(home: str, run_id: str, barrier, results) -> None:
    import dagster as dg

    with dg.DagsterInstance.from_config(home) as instance:
        barrier.wait()  # every process asks for the slot at the same moment
        results.put(instance.event_log_storage.claim_concurrency_slot("gpu", run_id, "step").is_claimed)


def test_processes_asking_together_get_one_gpu_slot(tmp_path):
    """The embedded instance's own guard (nexa_dagster/instance.py): six processes claim the one `gpu` slot at
    once, ten times over; exactly one gets it each time. Dagster's stock SQLite storage let up to five of six
    through in the same loop, which is how two CI runs once trained at the same time."""
    import multiprocessing

    import dagster as dg

    ctx = multiprocessing.get_context("fork")  # children open their own instance after the fork
    for round_ in range(10):
        home = tmp_path / f"round{round_}"
        instance_home(home, ROOT / "dagster.yaml")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert instance.event_log_storage.initialize_concurrency_limit_to_default("gpu")
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_claim, args=(str(home), f"run{i}", barrier, results)) for i in range(6)]
        for proc in procs:
            proc.start()
        claimed = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert sum(claimed) == 1, f"round {round_}: {sum(claimed)} of 6 processes hold the one gpu slot"


def test_training_and_teacher_steps_are_in_the_gpu_pool():
    pools = {key.path[-1]: node.pool for key, node in
             ((k, defs.resolve_assets_def(k).get_op_def_for_asset_key(k)) for k in defs.resolve_all_asset_keys())}
    for name in ("trained_model", "teacher_model", "teacher_outputs", "student_model", "hpo_trials"):
        assert pools[name] == "gpu", name
    assert pools["training_dataset"] is None and pools["evaluation_report"] is None
    instance_config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance_config["concurrency"]["pools"]["default_limit"] == 1


def test_queued_runs_started_by_the_daemon_take_turns_on_the_gpu_pool(tmp_path):
    """What a sensor or the UI does: submit runs to the queue; the daemon starts them and the pool serialises
    their gpu steps on the project's dagster.yaml as it is."""
    import time

    import dagster as dg

    from tests.process_helpers import group_alive, stop_group

    home = tmp_path / "home"
    instance_home(home, ROOT / "dagster.yaml")
    times = home / "times.txt"
    # A step long enough that both runs are up at once: then only the pool can keep their steps apart.
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_TEST_TIMES": str(times), "PYTHONPATH": str(ROOT),
           "NEXA_TEST_STEP_SECONDS": "10"}
    bin_dir = Path(sys.executable).parent
    for _ in range(2):
        subprocess.run([str(bin_dir / "dagster"), "job", "launch", "-m", "tests.pool_location", "-j", "gpu_job"],
                       cwd=home, env=env, check=True, capture_output=True, timeout=120)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.QUEUED] * 2  # nothing started yet
        log = open(tmp_path / "daemon.log", "wb")
        daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-m", "tests.pool_location"], cwd=home,
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not all(r.is_finished for r in instance.get_runs()):
                assert time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()[-3000:]
                time.sleep(1)
            assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS] * 2
            runs = sorted((r.start_time, r.end_time) for r in instance.get_run_records())
            assert runs[1][0] < runs[0][1], f"the daemon did not run both at once: {runs}"
        finally:
            stop_group(daemon)
            log.close()
        assert not group_alive(daemon.pid)
    first, second = sorted((float(start), float(end)) for _, start, end in
                           (line.split() for line in times.read_text().splitlines()))
    assert second[0] >= first[1], f"gpu steps overlapped: {first} {second}"
