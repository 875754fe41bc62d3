"""The `gpu` pool on a real instance configured by the project's dagster.yaml: two concurrent
`dagster job execute` runs of a step in pool `gpu` do not overlap (and do overlap with two slots)."""

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


def test_training_and_teacher_steps_are_in_the_gpu_pool():
    pools = {key.path[-1]: node.pool for key, node in
             ((k, defs.resolve_assets_def(k).get_op_def_for_asset_key(k)) for k in defs.resolve_all_asset_keys())}
    for name in ("trained_model", "teacher_model", "teacher_outputs", "student_model"):
        assert pools[name] == "gpu", name
    assert pools["training_dataset"] is None and pools["evaluation_report"] is None
    instance_config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance_config["concurrency"]["pools"]["default_limit"] == 1
