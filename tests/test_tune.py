"""`nexa tune`: a seeded search whose trials are ordinary runs; pruning, resume after a kill, parallel processes on
one study, PostgreSQL storage, and bad input refused in one line before anything is written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from tests.cli_helpers import ROOT, nexa_in_process, tree, write_recipe
from tests.conftest import tiny_recipe
from tests.postgres_helpers import fresh_database

LR = "training.optimizer.lr"


def _recipe(tiny_model, tiny_csv, root: Path, **tune) -> dict:
    # Six steps, a validation every two: three reports per trial, a few seconds each on CPU.
    recipe = tiny_recipe(tiny_model, tiny_csv, root, max_steps=6, checkpoint={"every_steps": 2, "keep": 1})
    recipe["tracking"] = {"mlflow": {"enabled": False}, "tensorboard": {"enabled": False}}
    recipe["telemetry"] = {"enabled": False}
    recipe["tune"] = {"seed": 7, **tune}
    return recipe


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tune")


def _study(root: Path, name: str, url: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url or f"sqlite:///{root / 'durable/tuning/studies.db'}")


def _record(root: Path, run_id: str) -> dict:
    path = Layout(root / "scratch", root / "durable", root / "shared").run_dir(run_id) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# --- bad input: one line, exit 2, nothing written -------------------------------------------------------------


@pytest.mark.parametrize("tune, args, expected", [
    ({"space": [{"key": LR, "low": 0.01, "high": 0.01}]}, [], f"tune.space[0] {LR}: empty or inverted range"),
    ({"space": [{"key": LR, "low": 0.01, "high": 0.001}]}, [], f"tune.space[0] {LR}: empty or inverted range"),
    ({"space": [{"key": LR, "low": 0.0, "high": 0.01, "log": True}]}, [], "a log range needs low > 0"),
    ({"space": [{"key": "model.dropoutt", "low": 0.1, "high": 0.2}]}, [], "model.dropoutt is not a config key"),
    ({"space": [{"key": "training.group_by_length", "low": 0, "high": 1}]}, [], "is not numeric"),
    ({"space": [{"key": "model.dropout", "low": 0.1, "high": 1.5}]}, [], "1.5 is refused by the config"),
    ({"space": [{"key": "data.max_samples", "low": 10, "high": 20}]}, [], "only model.* and training.* keys"),
    ({}, ["--max-trials", "0"], "--max-trials 0: a study needs at least one trial"),
    ({"storage": "postgresql://postgres@127.0.0.1:1/nexa_tune_nowhere"}, [],
     "tune.storage postgresql+psycopg2://postgres@127.0.0.1:1/nexa_tune_nowhere: cannot open the study database"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_model, tiny_csv, tmp_path, tune, args, expected):
    path = write_recipe(_recipe(tiny_model, tiny_csv, tmp_path / "store", **tune), tmp_path / "recipe.yaml")
    before = tree(tmp_path)
    code, out, err = nexa_in_process("tune", "--config", str(path), *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("nexa tune: error: ") and expected in err, err
    assert tree(tmp_path) == before  # no storage folder, no database, no dataset


def test_the_space_defaults_to_lr_and_dropout_around_the_recipe():
    from nexa_core.tuning.space import search_space

    cfg = validate_config({"data": {"path": "x.csv"}, "training": {"optimizer": {"lr": 2e-4}}})
    space = [(p.key, round(p.low, 10), round(p.high, 10), p.log) for p in search_space(cfg)]
    assert space == [(LR, 2e-5, 2e-3, True), ("model.dropout", 0.05, 0.2, False)]


def test_model_dropout_reaches_the_model_and_the_work_key(tiny_model):
    from nexa_core.training.models import load_classifier
    from nexa_core.training.record import work_key

    model = load_classifier(str(tiny_model), ["neg", "pos"], dropout=0.25)
    assert (model.config.hidden_dropout_prob, model.config.attention_probs_dropout_prob) == (0.25, 0.25)
    assert model.dropout.p == 0.25  # the classifier head's own dropout module
    assert load_classifier(str(tiny_model), ["neg", "pos"]).config.hidden_dropout_prob == 0.1  # unset: the model's
    base = {"data": {"path": "x.csv"}}
    unset, set_ = validate_config(base), validate_config({**base, "model": {"dropout": 0.25}})
    assert work_key(unset, "v") != work_key(set_, "v")
    # Unset, the key is the one computed before the setting existed (the same payload without model.dropout):
    # runs interrupted before the upgrade still resume.
    import hashlib

    before = unset.model_dump(include={"model": True, "training": True},
                              exclude={"training": {"device", "compile", "packing", "dataloader_workers"},
                                       "model": {"dropout"}})
    # The fast-path `auto` defaults key as the values they replaced (nexa_core/training/record.py).
    before["training"].update(precision="fp32", tf32=False)
    before["training"]["optimizer"]["name"] = "adamw_torch"
    before["training"]["distributed"] = {"world_size": 1, "seed": 42}  # as dumped before nodes, env, ... existed
    payload = before | {"dataset_version": "v", "init_from": "None", "pairs": "None", "kd": None}
    assert work_key(unset, "v") == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# --- searches that train ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_seeded_random_search_runs_four_trials_as_runs_and_writes_the_best_recipe(tiny_model, tiny_csv, root):
    from nexa_core.tuning.samplers import make_sampler
    from nexa_core.tuning.space import search_space, suggest

    recipe = _recipe(tiny_model, tiny_csv, root, study="seeded")
    path = write_recipe(recipe, root / "seeded.yaml")
    code, out, err = nexa_in_process("tune", "--config", str(path), "--max-trials", "4")
    assert code == 0, err
    trials = _study(root, "seeded").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    db = sqlite3.connect(root / "durable/tuning/studies.db")
    beaten = {row[0] for row in db.execute("SELECT trial_id FROM trial_heartbeats")}  # each trial beat while it trained
    db.close()
    assert {t._trial_id for t in trials} <= beaten
    lrs, dropouts = [t.params[LR] for t in trials], [t.params["model.dropout"] for t in trials]
    assert len(set(lrs)) == 4 and len(set(dropouts)) == 4
    assert all(3e-4 <= lr <= 3e-2 for lr in lrs) and all(0.05 <= d <= 0.2 for d in dropouts)  # around lr 0.003
    # One progress line per trial, then the leaderboard with every trial's run.
    assert sum(line.startswith(f"trial {n} ({n + 1}/4) complete: validation accuracy") for n in range(4)
               for line in out.splitlines()) == 4
    for t in trials:
        run_id = t.user_attrs["run_id"]
        assert run_id.startswith("tiny-trial_") and run_id in out
        record = _record(root, run_id)
        assert record["status"] == "complete"
        assert record["tune"] == {"study": "seeded", "trial_number": t.number, "params": t.params,
                                  "state": "complete", "value": t.value, "pruned_at_step": None}
        final = json.loads((root / "durable/runs" / run_id / "final/config.json").read_text())
        assert final["hidden_dropout_prob"] == t.params["model.dropout"]  # the trial's dropout was trained with
        assert (root / "durable/runs/manifests" / f"{run_id}.json").is_file()  # `nexa analyze` lists it
    # The same seed draws the same points in a fresh study, whichever process asks; another seed does not.
    cfg = validate_config(recipe)
    for seed, same in ((7, True), (8, False)):
        fresh = optuna.create_study(sampler=make_sampler(cfg.tune, seed), direction="maximize")
        points = [suggest(fresh.ask(), search_space(cfg)) for _ in range(4)]
        assert (points == [t.params for t in trials]) is same
    # best.yaml: the recipe with the best trial's values, ready for `nexa train`.
    best = max(trials, key=lambda t: t.value)
    best_path = root / "durable/tuning/seeded/best.yaml"
    assert f"best: trial {best.number} " in out and str(best_path) in out
    best_recipe = yaml.safe_load(best_path.read_text())
    assert best_recipe["training"]["optimizer"]["lr"] == best.params[LR]
    assert best_recipe["model"]["dropout"] == best.params["model.dropout"] and "tune" not in best_recipe
    assert validate_config(best_recipe).training.max_steps == 6


@pytest.mark.slow
def test_the_median_pruner_stops_a_weak_trial_and_its_run_says_so(tiny_model, tiny_csv, root):
    # A good learning rate first, then one so large that the first two steps throw the model off (no warm-up): at
    # the first report the weak trial's validation loss is above the median of the finished one, so it stops there.
    recipe = _recipe(tiny_model, tiny_csv, root, study="pruned", pruner="median", pruner_startup_trials=1,
                     metric="loss", space=[{"key": LR, "low": 3e-3, "high": 3.1e-3}])
    recipe["training"]["schedule"] = {"warmup_ratio": 0.0}
    code, out, err = nexa_in_process("tune", "--config", str(write_recipe(recipe, root / "pruned.yaml")),
                                     "--max-trials", "1")
    assert code == 0, err
    recipe["tune"]["space"] = [{"key": LR, "low": 0.5, "high": 0.51}]
    code, out, err = nexa_in_process("tune", "--config", str(write_recipe(recipe, root / "pruned.yaml")),
                                     "--max-trials", "2")
    assert code == 0, err
    good, weak = _study(root, "pruned").trials
    assert (good.state, weak.state) == (TrialState.COMPLETE, TrialState.PRUNED)
    assert weak.user_attrs["pruned_at_step"] == 2 and "trial 1 (2/2) pruned at step 2" in out
    record = _record(root, weak.user_attrs["run_id"])
    assert record["status"] == "complete" and record["train"]["global_step"] == 2  # of 6: stopped early
    assert record["tune"]["state"] == "pruned" and record["tune"]["pruned_at_step"] == 2
    assert (root / "durable/runs/manifests" / f"{weak.user_attrs['run_id']}.json").is_file()
    assert "trial 0 (1/2)" not in out  # the finished trial was not run again


def _popen_tune(path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "nexa_core.cli.main", "tune", "--config", str(path), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_a_killed_study_resumes_failing_the_dead_trial_and_keeping_finished_ones(tiny_model, tiny_csv, root):
    path = write_recipe(_recipe(tiny_model, tiny_csv, root, study="killed"), root / "killed.yaml")
    proc = _popen_tune(path, "--max-trials", "3")
    lines = []
    try:
        for line in proc.stdout:  # trial 0 finishes, trial 1 starts
            lines.append(line)
            if line.startswith("trial 1:"):
                break
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until trial 1 is training its run
            running = _study(root, "killed").trials[1]
            if "run_id" in running.user_attrs and _record(root, running.user_attrs["run_id"]).get("status") == "running":
                break
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert any(line.startswith("trial 0 (1/3) complete") for line in lines), "".join(lines)
    before = _study(root, "killed").trials
    assert [t.state for t in before] == [TrialState.COMPLETE, TrialState.RUNNING]

    code, out, err = nexa_in_process("tune", "--config", str(path), "--max-trials", "3")
    assert code == 0, err
    after = _study(root, "killed").trials
    assert [t.state for t in after] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert "trial 1: its process died; marked FAIL" in out and "trial 0:" not in out  # trial 0 not re-run
    assert after[0].user_attrs["run_id"] == before[0].user_attrs["run_id"]
    dead_run = _record(root, after[1].user_attrs["run_id"])
    assert dead_run["status"] == "failed" and "died" in dead_run["error"] and dead_run["tune"]["state"] == "failed"


@pytest.mark.slow
def test_two_processes_share_one_study_without_drawing_the_same_point(tiny_model, tiny_csv, root):
    path = write_recipe(_recipe(tiny_model, tiny_csv, root, study="parallel"), root / "parallel.yaml")
    procs = [_popen_tune(path, "--max-trials", "4") for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = _study(root, "parallel").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # exactly max_trials between them
    points = {tuple(sorted(t.params.items())) for t in trials}
    assert len(points) == 4
    assert {t.user_attrs["pid"] for t in trials} == {p.pid for p in procs}  # both trained trials
    assert len({t.user_attrs["run_id"] for t in trials}) == 4


@pytest.fixture
def postgres_url():
    with fresh_database("nexa_tune") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.mark.slow
def test_a_study_on_postgresql(tiny_model, tiny_csv, root, postgres_url):
    recipe = _recipe(tiny_model, tiny_csv, root, study="on-postgres", storage=postgres_url, sampler="tpe")
    code, out, err = nexa_in_process("tune", "--config", str(write_recipe(recipe, root / "pg.yaml")),
                                     "--max-trials", "2")
    assert code == 0, err
    trials = _study(root, "on-postgres", postgres_url.replace("postgresql://", "postgresql+psycopg2://")).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert "(postgresql+psycopg2://postgres@127.0.0.1:5432/nexa_tune_" in out
    assert not (root / "durable/tuning/on-postgres/best.yaml").read_text().count("postgres@")  # no tune section


def test_a_password_in_the_storage_url_stays_out_of_messages_and_trial_snapshots(tiny_model, tiny_csv, tmp_path):
    from nexa_core.tuning.steps import trial_config

    url = "postgresql://bob:hunter22@127.0.0.1:1/nexa_tune_nowhere"
    recipe = _recipe(tiny_model, tiny_csv, tmp_path / "store", storage=url)
    code, out, err = nexa_in_process("tune", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    assert code == 2 and "tune.storage postgresql+psycopg2://bob:***@127.0.0.1:1/" in err and "hunter22" not in err
    assert trial_config(recipe, {LR: 0.001}).tune.storage == "postgresql://bob:***@127.0.0.1:1/nexa_tune_nowhere"


@pytest.mark.slow
def test_trials_are_mlflow_runs_nested_under_the_study_run(tiny_model, tiny_csv, tmp_path):
    from mlflow import MlflowClient

    recipe = _recipe(tiny_model, tiny_csv, tmp_path, study="tracked")
    recipe["tracking"] = {"mlflow": {"enabled": True, "log_model": False}, "tensorboard": {"enabled": False}}
    code, out, err = nexa_in_process("tune", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")),
                                     "--max-trials", "1")
    assert code == 0, err
    client = MlflowClient(f"sqlite:///{tmp_path.resolve() / 'durable/mlflow/mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("nexacompute").experiment_id])
    study = [r for r in runs if r.data.tags.get("nexa.kind") == "study"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study[0].info.run_id]
    assert len(study) == 1 and study[0].data.tags["nexa.study"] == "tracked"
    run_id = _study(tmp_path, "tracked").trials[0].user_attrs["run_id"]
    assert [r.info.run_name for r in trials] == [run_id] and trials[0].data.tags["nexa.study"] == "tracked"


@pytest.mark.parametrize("pruner, kind", [("none", "NopPruner"), ("median", "MedianPruner"),
                                          ("successive_halving", "SuccessiveHalvingPruner")])
def test_each_pruner_setting_builds_its_optuna_pruner(pruner, kind):
    from nexa_core.tuning.samplers import make_pruner

    cfg = validate_config({"data": {"path": "x.csv"},
                           "tune": {"pruner": pruner, "pruner_startup_trials": 3, "pruner_warmup_steps": 20}})
    built = make_pruner(cfg.tune)
    assert type(built).__name__ == kind
    if pruner == "median":
        assert (built._n_startup_trials, built._n_warmup_steps) == (3, 20)


def test_the_median_pruner_waits_for_the_warmup_steps():
    from nexa_core.tuning.samplers import make_pruner

    cfg = validate_config({"data": {"path": "x.csv"},
                           "tune": {"pruner": "median", "pruner_startup_trials": 1, "pruner_warmup_steps": 25}})
    study = optuna.create_study(pruner=make_pruner(cfg.tune), direction="maximize")
    study.enqueue_trial({})
    first = study.ask()
    for step in (10, 20, 30):
        first.report(0.9, step)
    study.tell(first, 0.9)
    weak = study.ask()
    verdicts = []
    for step in (10, 20, 30):  # below the median at every step: prunable only from step 25 on
        weak.report(0.1, step)
        verdicts.append(weak.should_prune())
    assert verdicts == [False, False, True]


def test_pruning_a_trial_leaves_the_later_random_points_unchanged():
    # bench/tune.py compares a pruned and an unpruned study trial by trial: trial N must draw the same point in
    # both, whatever happened to the trials before it.
    from nexa_core.tuning.samplers import make_pruner, make_sampler
    from nexa_core.tuning.space import search_space, suggest

    points = {}
    for pruner in ("none", "median"):
        cfg = validate_config({"data": {"path": "x.csv"}, "tune": {"pruner": pruner, "pruner_startup_trials": 1}})
        study = optuna.create_study(sampler=make_sampler(cfg.tune, 7), pruner=make_pruner(cfg.tune),
                                    direction="maximize")
        points[pruner] = []
        for value in (0.9, 0.1, 0.95, 0.2):  # the median study prunes the weak ones at their first report
            trial = study.ask()
            points[pruner].append(suggest(trial, search_space(cfg)))
            trial.report(value, 1)
            study.tell(trial, state=TrialState.PRUNED) if trial.should_prune() else study.tell(trial, value)
        states = [t.state for t in study.trials]
        assert states.count(TrialState.PRUNED) == (2 if pruner == "median" else 0)
    assert points["none"] == points["median"]
