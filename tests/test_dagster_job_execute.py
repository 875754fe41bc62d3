"""The real `dagster job execute` command on a tiny recipe, recorded in a persistent instance."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.cli_helpers import ROOT, write_recipe

pytestmark = pytest.mark.slow
ASSETS = ["training_dataset", "trained_model", "evaluation_report", "run_manifest", "model_package", "promotion"]


def test_dagster_job_execute_runs_the_training_pipeline(recipe, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # the project's instance config, relocated
    recipe_path = write_recipe(recipe, tmp_path / "tiny.yaml")
    # Run config as a launchpad user would write it: override one key of the recipe resource.
    run_config = tmp_path / "run.yaml"
    run_config.write_text(yaml.safe_dump({"resources": {"nexa": {"config": {"training": {"epochs": 4}}}}}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_CONFIG": str(recipe_path), "TOKENIZERS_PARALLELISM": "false"}
    dagster = Path(os.sys.executable).parent / "dagster"
    proc = subprocess.run([str(dagster), "job", "execute", "-m", "nexa_dagster.definitions", "-j", "training_pipeline",
                           "-c", str(run_config)], cwd=home, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    current = tmp_path / "durable/deploy/current_model"
    assert f"at {current}" in output  # the run says where the deployed model is

    monkeypatch.chdir(home)  # dagster.yaml's storage paths are relative to the project root
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        for name in ASSETS:
            assert instance.get_latest_materialization_event(dg.AssetKey(name)) is not None, name
        event = instance.get_latest_materialization_event(dg.AssetKey("trained_model"))
        run_id = event.asset_materialization.metadata["run_id"].value
    finally:
        instance.dispose()
    snapshot = yaml.safe_load((tmp_path / "durable/runs" / run_id / "config.yaml").read_text())
    assert snapshot["training"]["epochs"] == 4  # the run config override reached the trainer
    assert (home / ".dagster/storage").is_dir()  # instance storage stays in the project-local folder
