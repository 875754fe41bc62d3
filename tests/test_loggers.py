"""TensorBoard event files and W&B runs written by a training: read back with tensorboard's own event reader and
from the offline W&B run file, and compared with the run's JSONL log; W&B's key never lands in a file."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import WandbConfig, validate_config
from nexa_core.tracking.loggers import check_loggers, logger_callbacks, wandb_wanted
from nexa_core.tracking.series import scalars
from nexa_core.tracking.wandb import mode
from tests.conftest import tiny_recipe
from tests.wandb_records import history, run_info

RUN_ID = "tiny_20260101_000000"
CANARY = "canary-wandb-key-0123456789abcdef0123456789abcdef"  # 40+ characters: a well-formed key


def _recipe(model, csv, root: Path, tracking: dict, **training) -> dict:
    recipe = tiny_recipe(model, csv, root, **training)
    recipe["tracking"] = {"mlflow": {"enabled": False}, **tracking}
    return recipe


def _wandb_env(root: Path, **env: str) -> dict:
    # W&B's own settings, cache and staging folders inside the test, never the home directory.
    return {"WANDB_CONFIG_DIR": str(root / "wandb_config"), "WANDB_CACHE_DIR": str(root / "wandb_cache"),
            "WANDB_DATA_DIR": str(root / "wandb_data"), "WANDB_SILENT": "true", **env}


def _train(recipe: dict, env: dict):
    from nexa_core.common.layout import Layout
    from nexa_core.data import dataset_for
    from nexa_core.training.steps import train_run

    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        before = _environment()
        result = train_run(cfg, dataset_for(cfg, layout).path, RUN_ID, layout)
        assert _environment() == before
    return result


def _environment() -> dict:
    # W&B changes nothing in the process environment but WANDB_SERVICE, its pointer to the service process it
    # starts (for subprocesses to share) and clears.
    return {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}


def _log(result) -> list[dict]:
    return [json.loads(line) for line in Path(result.log_path).read_text().splitlines()]


def _files_containing(root: Path, text: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


# ------------------------------------------------------------------------------------------------ without training
def test_log_records_become_the_chart_names_hf_uses():
    logs = {"loss": 0.5, "loss_ema": 0.6, "learning_rate": 1e-3, "eval_accuracy": 0.9, "test_macro_f1": 0.7,
            "epoch": 1.0, "note": "text", "flag": True, "nan": float("nan")}
    assert scalars(logs) == {"train/loss": 0.5, "train/loss_ema": 0.6, "train/learning_rate": 1e-3,
                             "eval/accuracy": 0.9, "test/macro_f1": 0.7, "train/epoch": 1.0}


@pytest.mark.parametrize(("enabled", "env", "on", "wandb_mode"), [
    ("auto", {}, False, "offline"),
    ("auto", {"WANDB_API_KEY": "k"}, True, "online"),
    ("auto", {"WANDB_MODE": "offline"}, True, "offline"),
    ("auto", {"WANDB_API_KEY": "k", "WANDB_MODE": "offline"}, True, "offline"),
    ("true", {}, True, "offline"),
    ("false", {"WANDB_API_KEY": "k"}, False, "online"),
])
def test_wandb_switch_and_mode(enabled, env, on, wandb_mode):
    cfg = WandbConfig(enabled=enabled)
    assert wandb_wanted(cfg, env) is on
    assert mode(cfg, env) == wandb_mode
    assert mode(WandbConfig(enabled=enabled, mode="online"), env) == "online"  # the config wins


def test_no_key_and_auto_builds_no_wandb_logger(recipe, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    recipe["tracking"] = {"tensorboard": {"enabled": False}}
    assert logger_callbacks(validate_config(recipe), tmp_path / "run", RUN_ID) == []
    recipe["tracking"] = {}
    assert [type(c).__name__ for c in logger_callbacks(validate_config(recipe), tmp_path / "run", RUN_ID)] == [
        "TensorBoardLog"]
    assert not (tmp_path / "run").exists()  # building them writes nothing


def test_wandb_switched_on_without_the_package_is_one_line(recipe, tmp_path, monkeypatch, caplog):
    from tests.cli_helpers import nexa_in_process, tree, write_recipe

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: find_spec answers None
    recipe["tracking"] = {"wandb": {"enabled": True}}
    with pytest.raises(NexaError, match=r"tracking\.wandb\.enabled=true: .*pip install 'nexacompute\[wandb\]'"):
        check_loggers(validate_config(recipe))
    before = tree(tmp_path)
    code, _, err = nexa_in_process("train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    assert code == 2 and "tracking.wandb.enabled=true" in err and len(err.strip().splitlines()) == 1
    assert tree(tmp_path) == {**before, "r.yaml": (tmp_path / "r.yaml").stat().st_size}  # nothing else written
    # auto with a key but no package: not refused, a warning, and no W&B logger.
    recipe["tracking"] = {"tensorboard": {"enabled": False}}
    monkeypatch.setenv("WANDB_API_KEY", CANARY)
    check_loggers(validate_config(recipe))
    with caplog.at_level(logging.WARNING):
        assert logger_callbacks(validate_config(recipe), tmp_path / "run", RUN_ID) == []
    assert "wandb is not installed" in caplog.text and CANARY not in caplog.text


def test_a_resumed_run_replaces_the_steps_logged_past_its_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nexa_core.tracking.tensorboard import TensorBoardLog

    def attempt(start: int, steps: range, scale: float):
        callback, state = TensorBoardLog(tmp_path / "tb"), SimpleNamespace(is_world_process_zero=True, global_step=start)
        callback.on_train_begin(None, state, None)
        for step in steps:
            state.global_step = step
            callback.on_log(None, state, None, logs={"loss": step * scale})
        callback.on_train_end(None, state, None)

    attempt(0, range(2, 10, 2), 1.0)  # logs steps 2, 4, 6, 8, then "crashes" after its checkpoint at step 4
    # Event files are read in name order: `<unix second>.<host>.<pid>.<writer counter>`. A real resume is a later
    # process; here, one second apart keeps the counter (9 then 10 after other tests' writers) from sorting first.
    time.sleep(1.05)
    attempt(4, range(6, 12, 2), 10.0)  # resumes from step 4: 6, 8 again, then 10
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(2, 2.0), (4, 4.0), (6, 60.0), (8, 80.0),
                                                                     (10, 100.0)]


class _FakeRun:
    """Stands in for a resumed online W&B run (which needs W&B's servers): at step 7, and failing from step 12."""

    def __init__(self):
        self.step, self.logged = 7, []

    def log(self, values, step):
        if step >= 12:
            raise ConnectionError(f"lost the server (key {CANARY})")
        self.logged.append((step, values))


def test_wandb_skips_steps_its_run_already_holds_and_stops_once_on_failure(tmp_path, caplog):
    from nexa_core.tracking.wandb import WandbLog

    callback = WandbLog(WandbConfig(), tmp_path, RUN_ID)
    callback.run = run = _FakeRun()
    state = SimpleNamespace(is_world_process_zero=True, global_step=0)
    with caplog.at_level(logging.WARNING), pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_API_KEY", CANARY)
        for step in (6, 8, 10, 12, 14):
            state.global_step = step
            callback.on_log(None, state, None, logs={"loss": float(step)})
    assert run.logged == [(8, {"train/loss": 8.0}), (10, {"train/loss": 10.0})]
    assert callback.run is None  # no more W&B calls after the failure
    assert [r.getMessage() for r in caplog.records] == [
        "W&B stopped accepting data (lost the server (key <redacted>)); training goes on without W&B (tracking.wandb)"]


# ------------------------------------------------------------------------------------------------- with training
@pytest.fixture(scope="module")
def logged_run(tiny_model, tiny_csv, tmp_path_factory):
    """One training with TensorBoard on and W&B offline, a canary API key in the environment."""
    root = tmp_path_factory.mktemp("logged")
    recipe = _recipe(tiny_model, tiny_csv, root, {"wandb": {"project": "nexa-tests"}}, max_steps=10)
    result = _train(recipe, _wandb_env(root, WANDB_MODE="offline", WANDB_API_KEY=CANARY))
    return result, root


@pytest.mark.slow
def test_tensorboard_event_file_holds_the_logged_series(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, _ = logged_run
    log = _log(result)
    acc = EventAccumulator(str(Path(result.run_dir) / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/loss_ema", "train/learning_rate", "train/samples_per_second",
            "train/tokens_per_second", "eval/loss", "eval/accuracy", "eval/macro_f1"} <= tags
    for tag, key in [("train/loss", "loss"), ("train/loss_ema", "loss_ema"), ("train/learning_rate", "learning_rate"),
                     ("eval/accuracy", "eval_accuracy")]:
        expected = [(r["step"], r[key]) for r in log if key in r]
        assert expected, key
        assert [e.step for e in acc.Scalars(tag)] == [s for s, _ in expected], tag
        assert [e.value for e in acc.Scalars(tag)] == pytest.approx([v for _, v in expected], rel=1e-6), tag
    assert [s for s, _ in expected] == [5, 10]  # eval every 5 steps of 10
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4, 6, 8, 10]
    assert "config/text_summary" in acc.Tags()["tensors"]  # the scrubbed config, as text


@pytest.mark.slow
def test_wandb_offline_run_holds_the_history_and_config(logged_run):
    pytest.importorskip("wandb")  # the dev extra
    result, _ = logged_run
    run_dir = Path(result.run_dir)
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    (run_file,) = folder.glob("run-*.wandb")
    run_id, name, project, config = run_info(run_file)
    assert name == RUN_ID and project == "nexa-tests" and run_id.startswith(f"{RUN_ID}-")
    assert config["training.max_steps"] == 10 and config["tracking.wandb.project"] == "nexa-tests"
    rows = history(run_file)
    log = _log(result)
    losses = {r["_step"]: r["train/loss"] for r in rows if "train/loss" in r}
    assert losses == pytest.approx({r["step"]: r["loss"] for r in log if "loss" in r})
    ema = {r["_step"]: r["train/loss_ema"] for r in rows if "train/loss_ema" in r}
    assert ema == pytest.approx({r["step"]: r["loss_ema"] for r in log if "loss" in r})
    accuracy = {r["_step"]: r["eval/accuracy"] for r in rows if "eval/accuracy" in r}
    assert accuracy == pytest.approx({r["step"]: r["eval_accuracy"] for r in log if "eval_accuracy" in r})


@pytest.mark.slow
def test_the_wandb_key_is_in_no_file_written(logged_run):
    pytest.importorskip("wandb")  # the dev extra
    result, root = logged_run
    assert list((Path(result.run_dir) / "wandb").rglob("*.wandb"))  # W&B did write its files here
    assert _files_containing(root, CANARY) == []


@pytest.mark.slow
def test_disabled_tensorboard_and_a_failing_wandb_leave_a_finished_training(tiny_model, tiny_csv, tmp_path, caplog):
    # Online with a malformed key: wandb refuses at init (without a network round trip); training goes on.
    short_key = "canary-short-key"
    recipe = _recipe(tiny_model, tiny_csv, tmp_path, {"tensorboard": {"enabled": False}, "wandb": {"enabled": True}},
                     max_steps=2, checkpoint={"every_steps": 2, "keep": 1})
    with caplog.at_level(logging.WARNING, logger="nexa_core.tracking"):
        result = _train(recipe, _wandb_env(tmp_path, WANDB_MODE="online", WANDB_API_KEY=short_key))
    run_dir = Path(result.run_dir)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert not (run_dir / "tensorboard").exists()
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("nexa_core.tracking")]
    assert len(warnings) == 1 and "W&B cannot start" in warnings[0], warnings
    assert _files_containing(tmp_path, short_key) == [] and short_key not in caplog.text
