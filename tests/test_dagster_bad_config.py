"""Bad run config or a bad NEXA_CONFIG recipe on the dagster CLI: one short line naming the key and the fix, exit 2,
no traceback, no schema dump, no run created and nothing written under the recipe's storage. The real
`dagster job execute` (slow: ~8 s a case to load the code location), and the same messages in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from nexa_dagster import definitions
from nexa_dagster.cli_errors import one_line
from tests.cli_helpers import ROOT, write_recipe

DAGSTER = Path(sys.executable).parent / "dagster"
NEXA = ["resources", "nexa", "config"]


def _nested(path: list[str], value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


# (job, run config, what the error line must say)
RUN_CONFIGS = {
    "unknown key": ("training_pipeline", _nested([*NEXA, "training"], {"epoch": 4}),
                    ["resources.nexa.config.training: unknown key 'epoch'", "did you mean 'epochs'?"]),
    "unknown section": ("training_pipeline", _nested(NEXA, {"trainin": {"epochs": 4}}),
                        ["resources.nexa.config: unknown key 'trainin'", "did you mean 'training'?"]),
    "wrong type": ("training_pipeline", _nested([*NEXA, "training", "optimizer"], {"lr": "fast"}),
                   ["resources.nexa.config.training.optimizer.lr: 'fast' is not a valid Float"]),
    "out of range": ("training_pipeline", _nested([*NEXA, "training"], {"epochs": -1}),
                     ["resources.nexa.config", "training.epochs: Input should be greater than 0"]),
    "op config key": ("maintenance", {"ops": {"apply_retention": {"config": {"dayz": 3}}}},
                      ["ops.apply_retention.config: unknown key 'dayz'", "did you mean 'days'?"]),
    "op config type": ("maintenance", {"ops": {"apply_retention": {"config": {"days": "soon"}}}},
                       ["ops.apply_retention.config.days: 'soon' is not a valid Float"]),
}


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # the project's instance config, relocated
    return home


def _execute(home: Path, job: str, recipe_path: Path, run_config: dict | None = None):
    args = [str(DAGSTER), "job", "execute", "-m", "nexa_dagster.definitions", "-j", job]
    if run_config is not None:
        (home / "run.yaml").write_text(yaml.safe_dump(run_config))
        args += ["-c", str(home / "run.yaml")]
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_CONFIG": str(recipe_path), "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=300)


def _assert_refused(proc, must_say: list[str]) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "Traceback" not in output and "Expected:" not in output, output[-3000:]
    assert all(len(line) <= 300 for line in output.splitlines()), output[-3000:]
    # What dagster's CLI prints anyway (its SupersessionWarning, two lines) and our one line.
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and len(output.splitlines()) <= 3, output
    for text in must_say:
        assert text in errors[0], errors[0]
    return errors[0]


def _no_runs(home: Path, monkeypatch) -> list:
    monkeypatch.chdir(home)  # dagster.yaml's storage paths are relative to the project root
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        return instance.get_runs()
    finally:
        instance.dispose()


@pytest.mark.parametrize("case", list(RUN_CONFIGS))
def test_config_errors_read_as_one_line_in_process(case):
    job, run_config, must_say = RUN_CONFIGS[case]
    # The code location's own definitions (configs/default.yaml): refused while the run is created, so nothing runs.
    with pytest.raises(dg.DagsterError) as raised:
        definitions.defs.resolve_job_def(job).execute_in_process(run_config=run_config)
    if "key" in case or "section" in case:  # dagster's own message holds the schema, which the line leaves out
        assert "Expected:" in str(raised.value)
    line = one_line(raised.value)
    assert line and "\n" not in line and len(line) < 300, line
    assert line.startswith((f"bad run config for job {job}: ", "bad run config under resources.nexa.config: "))
    for text in must_say:
        assert text in line, line
    assert one_line(ValueError("a bug")) is None  # anything else keeps its traceback


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RUN_CONFIGS))
def test_bad_run_config_is_one_line_naming_the_key(case, recipe, tmp_path, home, monkeypatch):
    job, run_config, must_say = RUN_CONFIGS[case]
    proc = _execute(home, job, write_recipe(recipe, tmp_path / "tiny.yaml"), run_config)
    line = _assert_refused(proc, must_say)
    assert line.startswith(f"error: bad run config for job {job}:") or "bad run config under resources.nexa" in line
    assert _no_runs(home, monkeypatch) == []  # refused before a run exists
    for root in ("scratch", "durable", "shared"):
        assert not (tmp_path / root).exists(), root


@pytest.mark.slow
def test_missing_nexa_config_is_one_line(tmp_path, home, monkeypatch):
    proc = _execute(home, "training_pipeline", tmp_path / "nosuch.yaml")
    _assert_refused(proc, [f"NEXA_CONFIG {tmp_path / 'nosuch.yaml'}: file not found", "set NEXA_CONFIG to"])
    assert _no_runs(home, monkeypatch) == []


@pytest.mark.slow
def test_invalid_nexa_config_is_one_line(recipe, tmp_path, home, monkeypatch):
    recipe["training"]["epochs"] = -1
    recipe["training"]["lrr"] = 0.1
    path = write_recipe(recipe, tmp_path / "bad.yaml")
    proc = _execute(home, "training_pipeline", path)
    _assert_refused(proc, [f"NEXA_CONFIG {path}: invalid config:", "training.epochs", "training.lrr"])
    assert _no_runs(home, monkeypatch) == []
    for root in ("scratch", "durable", "shared"):
        assert not (tmp_path / root).exists(), root
