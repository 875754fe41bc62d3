"""MLflow tracking against a real `mlflow server` on loopback: what a tiny `nexa train` logs (params, step metrics,
evaluation, tags, artifacts), the registry's champion alias through deploy and rollback, no secret anywhere, and a
server that dies mid-run leaving a finished training."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, nexa_in_process, write_recipe
from tests.conftest import tiny_recipe
from tests.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow
CANARIES = {"AWS_SECRET_ACCESS_KEY": "canaryAwsSecret7731", "WANDB_API_KEY": "canaryWandbKey5512",
            "HF_TOKEN": "canaryHfToken9043", "MLFLOW_TRACKING_TOKEN_EXTRA": "canaryMlflowTok2208"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server")).start()
    yield server
    server.stop()


URI_PASSWORD = "canaryUriPassword4471"  # in the recipe's tracking URI: the server ignores it, nothing may keep it


@pytest.fixture(scope="module")
def store(tiny_model, tiny_csv, tmp_path_factory, server) -> dict:
    root = tmp_path_factory.mktemp("tracked")
    recipe = tiny_recipe(tiny_model, tiny_csv, root)
    uri = server.url.replace("http://", f"http://nexa:{URI_PASSWORD}@")  # the recipe's URI wins over the env's
    recipe["tracking"] = {"mlflow": {"enabled": True, "registered_model": "tiny-classifier", "tracking_uri": uri}}
    return {"root": root, "recipe": recipe}


def _env(server) -> dict:
    return {"MLFLOW_TRACKING_URI": server.url, "NEXA_MLFLOW": "on", **CANARIES}


def _train(store: dict, server, **overrides) -> dict:
    recipe = json.loads(json.dumps(store["recipe"]))
    for key, value in overrides.items():
        recipe["training"][key] = value
    path = write_recipe(recipe, store["root"] / f"recipe-{len(overrides)}.yaml")
    # In-process (the real `nexa` entry point, without a new interpreter's imports): the killed-server test below
    # runs it as a subprocess.
    code, out, err = nexa_in_process("train", "--config", str(path), env=_env(server))
    assert code == 0, err[-3000:]
    return json.loads(out[out.rindex("{\n"):])


@pytest.fixture(scope="module")
def first(store, server) -> dict:
    return _train(store, server)


def _client(server):
    from mlflow import MlflowClient

    return MlflowClient(server.url, server.url)


def _tracking(store: dict, run_id: str) -> dict:
    return json.loads((Path(store["root"]) / "durable/runs" / run_id / "tracking.json").read_text())


def test_a_training_is_one_mlflow_run_with_params_step_metrics_evaluation_tags_and_artifacts(store, server, first):
    run_id, run_dir = first["run_id"], Path(store["root"]) / "durable/runs" / first["run_id"]
    client, record = _client(server), _tracking(store, run_id)
    assert record["uri"] == server.url and record["url"].startswith(f"{server.url}/#/experiments/")
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == run_id

    params = run.data.params
    assert params["training.optimizer.lr"] == "0.003" and params["training.batch_size"] == "16"
    assert params["model.name_or_path"] == store["recipe"]["model"]["name_or_path"]
    local = json.loads((run_dir / "run.json").read_text())
    assert params["dataset_version"] == local["dataset_version"]

    # Step metrics: every training log line of the run, at its step, with the same value.
    log = [json.loads(line) for line in (run_dir / "logs/train_log.jsonl").read_text().splitlines()]
    logged = {(r["step"], r["loss"]) for r in log if "loss" in r}
    history = client.get_metric_history(run.info.run_id, "loss")
    assert {(m.step, m.value) for m in history} == logged and len(logged) >= 5
    assert {m.step for m in client.get_metric_history(run.info.run_id, "learning_rate")} == {s for s, _ in logged}
    rates = {(r["step"], r["samples_per_second"]) for r in log if "samples_per_second" in r}  # not on the first log
    assert {(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "samples_per_second")} == rates
    assert len(rates) >= len(logged) - 1
    evals = [r for r in log if "eval_accuracy" in r]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "eval_accuracy")] == \
        [(r["step"], r["eval_accuracy"]) for r in evals]

    # Evaluation and final figures.
    report = json.loads((run_dir / "metrics.json").read_text())
    metrics = run.data.metrics
    assert metrics["test_accuracy"] == pytest.approx(report["accuracy"]) == pytest.approx(first["accuracy"])
    assert metrics["test_macro_f1"] == pytest.approx(report["macro_f1"])
    assert metrics["train_loss"] == pytest.approx(local["train"]["train_metrics"]["train_loss"])
    assert metrics["telemetry_train_wall_seconds"] > 0

    tags = run.data.tags
    environment = json.loads((run_dir / "environment.json").read_text())
    assert tags["nexa.run_id"] == run_id and tags["nexa.kind"] == "trained"
    assert tags["nexa.dataset_version"] == local["dataset_version"]
    assert tags["nexa.environment_fingerprint"] == environment["fingerprint"] == local["environment_fingerprint"]
    assert tags["nexa.code_commit"] == str(environment["git_commit"])

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "run")}
    assert {"run/config.yaml", "run/metrics.json", "run/loss_curve.png", f"run/{run_id}.json",
            "run/environment.json"} <= artifacts
    manifest = Path(client.download_artifacts(run.info.run_id, f"run/{run_id}.json", str(store["root"] / "dl")))
    assert json.loads(manifest.read_text()) == json.loads((Path(store["root"]) / f"durable/runs/manifests/{run_id}.json")
                                                          .read_text())


def test_no_secret_reaches_a_param_tag_metric_or_artifact(store, server, first):
    client = _client(server)
    run = client.get_run(_tracking(store, first["run_id"])["run_id"])
    params = run.data.params
    texts = [*run.data.params, *run.data.params.values(), *run.data.tags, *run.data.tags.values(), *run.data.metrics]
    folder = Path(client.download_artifacts(run.info.run_id, "", str(store["root"] / "all_artifacts")))
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 5
    assert params["tracking.mlflow.tracking_uri"] == server.url  # the URI, without its user:password part
    for secret in (*CANARIES.values(), URI_PASSWORD):
        assert not any(secret in t for t in texts)
        assert not any(secret.encode() in p.read_bytes() for p in files)


def _predictions(model_uri_or_path: str) -> list:
    import mlflow

    if model_uri_or_path.startswith("models:/"):
        frame = mlflow.pyfunc.load_model(model_uri_or_path).predict(["good great movie", "awful bad film"])
        return [(row["label"], round(float(row["score"]), 5)) for _, row in frame.iterrows()]
    from transformers import pipeline

    out = pipeline("text-classification", model=model_uri_or_path, device="cpu")(["good great movie", "awful bad film"])
    return [(row["label"], round(float(row["score"]), 5)) for row in out]


def test_the_champion_alias_serves_what_current_model_serves_after_deploy_and_rollback(store, server, first,
                                                                                        monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    client, name = _client(server), "tiny-classifier"
    second = _train(store, server, optimizer={"lr": 0.001})
    durable = Path(store["root"]) / "durable"
    current = durable / "deploy/current_model"
    versions = {r: _tracking(store, r)["model_version"] for r in (first["run_id"], second["run_id"])}
    assert versions[first["run_id"]] != versions[second["run_id"]]
    assert client.get_registered_model(name).tags["nexa.managed"] == "true"

    def deploy(*args: str) -> None:
        code, _, err = nexa_in_process("deploy", *args, env=_env(server))
        assert code == 0, err

    def aliases() -> dict:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}

    config = ["--config", str(store["root"] / "recipe-0.yaml")]
    deploy(first["run_id"], *config)
    assert aliases() == {"champion": versions[first["run_id"]]}
    deploy(second["run_id"], "--force", *config)
    assert aliases() == {"champion": versions[second["run_id"]], "previous": versions[first["run_id"]]}
    assert _predictions(f"models:/{name}@champion") == _predictions(str(current.resolve()))
    assert _predictions(f"models:/{name}@champion") != _predictions(f"models:/{name}@previous")

    deploy("--rollback", *config)
    assert current.resolve().parent.name == first["run_id"]
    assert aliases() == {"champion": versions[first["run_id"]]}
    assert _predictions(f"models:/{name}@champion") == _predictions(str(current.resolve()))


def test_a_server_that_dies_mid_run_leaves_a_finished_training(store, tmp_path):
    """The training goes on, the failure is reported once, and the local record is complete."""
    doomed = MlflowServer(tmp_path / "doomed").start()
    recipe = json.loads(json.dumps(store["recipe"]))
    recipe["storage"] = {k: str(tmp_path / k) for k in ("scratch", "durable", "shared")}
    recipe["training"].update(epochs=4, logging_steps=1)
    recipe["tracking"]["mlflow"].update(registered_model="doomed", tracking_uri=None)  # MLFLOW_TRACKING_URI: doomed
    path = write_recipe(recipe, tmp_path / "recipe.yaml")
    env = {**__import__("os").environ, **_env(doomed), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nexa_core.cli.main", "train", "--config", str(path)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        # Kill the server once the run has logged its first steps (its training log has started).
        while not any(Path(tmp_path / "durable/runs").glob("*/logs/train_log.jsonl")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
            time.sleep(0.2)
        doomed.stop()
        out, err = proc.communicate(timeout=400)
    finally:
        doomed.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    [run_dir] = [p for p in (tmp_path / "durable/runs").iterdir() if p.name != "manifests"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert (run_dir / "final/model.safetensors").is_file() and (run_dir / "metrics.json").is_file()
    assert (tmp_path / f"durable/runs/manifests/{run_dir.name}.json").is_file()
    assert json.loads(out[out.rindex("{\n"):])["accuracy"] > 0
    assert err.count("MLflow tracking at") == 1  # reported once, from the first failing call on
    assert "log step metrics" in _tracking({"root": tmp_path}, run_dir.name)["failure"]
