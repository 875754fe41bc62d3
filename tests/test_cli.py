"""The `nexa` command line end to end: train, evaluate, package, deploy, roll back, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, nexa, write_recipe

pytestmark = pytest.mark.slow


def _last_json(stdout: str) -> dict:
    return json.loads(stdout[stdout.rindex("{\n"):])


def test_train_evaluate_package_deploy_and_rollback(recipe, tmp_path):
    recipe["tracking"] = {"mlflow": {"enabled": False}}  # and nothing of MLflow is created (test_tracking*.py: on)
    config = str(write_recipe(recipe, tmp_path / "tiny.yaml"))
    first = _last_json(nexa("train", "--config", config, "--override", "training.optimizer.lr=0.004").stdout)
    assert first["accuracy"] >= 0.8 and Path(first["manifest"]).is_file()
    assert not (tmp_path / "durable/mlflow").exists() and not (tmp_path / "durable/runs" / first["run_id"] /
                                                               "tracking.json").exists()
    assert not any((ROOT / name).exists() for name in ("mlflow.db", "mlruns"))  # MLflow 3's default: the cwd
    snapshot = (tmp_path / "durable/runs" / first["run_id"] / "config.yaml").read_text()
    assert "lr: 0.004" in snapshot  # the override reached the trainer's config

    evaluated = _last_json(nexa("evaluate", "--config", config, "--checkpoint", first["final"]).stdout)
    assert evaluated["accuracy"] == pytest.approx(first["accuracy"])
    assert Path(evaluated["metrics_path"]).is_file()

    package = nexa("package", first["run_id"], "--config", config).stdout.strip()
    assert package.endswith(f"{first['run_id']}.tar.gz") and Path(package).is_file()
    nexa("deploy", first["run_id"], "--config", config)

    second = _last_json(nexa("train", "--config", config, "--override", "training.epochs=4").stdout)
    assert second["run_id"] != first["run_id"]
    # The champion gate compares it with the first on the same test split; --force deploys it whatever the result.
    nexa("deploy", second["run_id"], "--force", "--config", config)
    current = tmp_path / "durable/deploy/current_model"
    assert second["run_id"] in nexa("deploy", "--config", config).stdout
    out = nexa("deploy", "--rollback", "--config", config).stdout
    assert first["run_id"] in out and current.resolve().parent.name == first["run_id"]


@pytest.mark.parametrize("args, message", [
    (["--override", "training.optimizer.lrr=1"], "training.optimizer.lrr: unknown key"),
    (["--override", "training.epochs=-1"], "training.epochs:"),
    (["--override", "data.text_column=body"], "data.text_column"),
    (["--override", "model.name_or_path=/nonexistent/model"], "model.name_or_path"),
    (["--override", "training.precision=bf16"], "training.precision=bf16"),
])
def test_bad_config_fails_with_one_line_and_writes_no_run(recipe, tmp_path, args, message):
    config = str(write_recipe(recipe, tmp_path / "tiny.yaml"))
    proc = nexa("train", "--config", config, *args, check=False)
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("nexa train: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "durable/runs").exists()  # nothing half-written to resume by mistake


def test_bad_data_files_fail_cleanly(recipe, tmp_path):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("review,sentiment\ncaf\xe9 great,pos\n".encode("latin-1"))
    recipe["data"]["path"] = str(latin1)
    proc = nexa("train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")), check=False)
    assert proc.returncode == 2 and "UTF-8" in proc.stderr and "latin1.csv" in proc.stderr

    recipe["data"]["path"] = str(tmp_path / "missing.csv")
    proc = nexa("train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")), check=False)
    assert proc.returncode == 2 and "data.path" in proc.stderr


def test_package_and_deploy_refuse_bad_run_ids(recipe, tmp_path):
    config = str(write_recipe(recipe, tmp_path / "tiny.yaml"))
    for bad in ["../etc_20260101_000000", "tiny_2026", "a/b_20260101_000000"]:
        proc = nexa("package", bad, "--config", config, check=False)
        assert proc.returncode == 2 and "run id" in proc.stderr
    proc = nexa("deploy", "tiny_20260101_000000", "--config", config, check=False)
    assert proc.returncode == 2 and "no run tiny_20260101_000000 under" in proc.stderr  # not "evaluate it first"
    proc = nexa("deploy", "--rollback", "--config", config, check=False)
    assert proc.returncode == 2
