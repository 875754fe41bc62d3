"""MLflow tracking without a server: where runs go, bad tracking input refused before anything is written, params
without secrets, tracking switched off, and a backend that fails mid-run reported once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import validate_config
from nexa_core.tracking.params import config_params, strip_userinfo
from nexa_core.tracking.settings import check_tracking, mlflow_settings
from nexa_core.tracking.tracker import RunTracker
from tests.cli_helpers import nexa_in_process, tree, write_recipe
from tests.process_helpers import free_port


def _cfg(tmp_path: Path, **mlflow) -> object:
    return validate_config({"name": "demo", "data": {"path": "x.csv"}, "tracking": {"mlflow": {"enabled": True, **mlflow}},
                            "storage": {k: str(tmp_path / k) for k in ("scratch", "durable", "shared")}})


def test_the_embedded_store_lives_under_durable_and_the_environment_or_recipe_picks_a_server(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    embedded = mlflow_settings(_cfg(tmp_path))
    assert embedded.uri == f"sqlite:///{tmp_path.resolve() / 'durable/mlflow/mlflow.db'}"
    assert embedded.artifact_location == (tmp_path.resolve() / "durable/mlflow/artifacts").as_uri()
    assert embedded.registered_model == "demo" and embedded.experiment == "nexacompute"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000/")
    from_env = mlflow_settings(_cfg(tmp_path))
    assert (from_env.uri, from_env.setting, from_env.artifact_location) == ("http://127.0.0.1:5000", "MLFLOW_TRACKING_URI",
                                                                           None)
    from_recipe = mlflow_settings(_cfg(tmp_path, tracking_uri="https://u:pw@mlflow.example.com", registered_model="m"))
    assert from_recipe.setting == "tracking.mlflow.tracking_uri" and from_recipe.registered_model == "m"
    assert from_recipe.display_uri == "https://mlflow.example.com"
    assert mlflow_settings(_cfg(tmp_path, enabled=False)) is None


def test_nexa_mlflow_off_is_the_default_of_enabled_and_the_recipe_wins(tmp_path, monkeypatch):
    raw = {"data": {"path": "x.csv"}}
    monkeypatch.setenv("NEXA_MLFLOW", "off")
    assert validate_config(raw).tracking.mlflow.enabled is False
    monkeypatch.setenv("NEXA_MLFLOW", "on")
    assert validate_config(raw).tracking.mlflow.enabled is True
    monkeypatch.setenv("NEXA_MLFLOW", "off")
    assert validate_config({**raw, "tracking": {"mlflow": {"enabled": True}}}).tracking.mlflow.enabled is True


@pytest.mark.parametrize(("uri", "words"), [
    ("ftp://host/x", ["tracking.mlflow.tracking_uri", "not an MLflow tracking URI", "enabled: false"]),
    ("http://127.0.0.1:{port}", ["tracking.mlflow.tracking_uri", "not reachable", "mlflow server"]),
])
def test_bad_tracking_uris_are_refused_in_one_line_naming_the_setting(tmp_path, uri, words):
    with pytest.raises(NexaError) as err:
        check_tracking(_cfg(tmp_path, tracking_uri=uri.format(port=free_port())))
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)


def test_a_registered_model_not_made_by_nexacompute_is_refused(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = check_tracking(_cfg(tmp_path, registered_model="theirs"))  # creates the embedded folder only
    MlflowClient(settings.uri, settings.uri).create_registered_model("theirs")
    with pytest.raises(NexaError, match=r"tracking.mlflow.registered_model 'theirs': a registered model of that name "
                                        r"exists and was not created by NexaCompute"):
        check_tracking(_cfg(tmp_path, registered_model="theirs"))
    check_tracking(_cfg(tmp_path, registered_model="theirs", log_model=False))  # no registration: nothing to clash


def test_nexa_train_refuses_an_unreachable_server_before_writing_anything(tiny_model, tiny_csv, tmp_path):
    from tests.conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path / "store")
    path = write_recipe(recipe, tmp_path / "recipe.yaml")
    (tmp_path / "store").mkdir()
    before = tree(tmp_path / "store")
    code, out, err = nexa_in_process("train", "--config", str(path), "--override", "tracking.mlflow.enabled=true",
                                     env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "MLFLOW_TRACKING_URI http://127.0.0.1:" in err and "not reachable" in err
    assert tree(tmp_path / "store") == before


def test_params_are_the_flattened_config_without_secrets(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canarySecretValue99")
    params = config_params({"training": {"optimizer": {"lr": 0.001}, "epochs": 2}, "data": {"path": "s3://b/canarySecretValue99/x.csv"},
                            "tracking": {"mlflow": {"tracking_uri": "https://bob:hunter22@mlflow.example.com/"}},
                            "api_token": "tok", "drop_labels": ["a", "b"]})
    assert params == {"training.optimizer.lr": "0.001", "training.epochs": "2", "data.path": "s3://b/<redacted>/x.csv",
                      "tracking.mlflow.tracking_uri": "https://mlflow.example.com/", "drop_labels": "['a', 'b']"}
    assert strip_userinfo("see http://a:b@h:1/x and https://h2/y") == "see http://h:1/x and https://h2/y"


class _DeadClient:
    def __init__(self):
        self.calls = 0

    def log_batch(self, *args, **kwargs):
        self.calls += 1
        raise ConnectionError("Connection refused")


def test_a_backend_that_fails_is_reported_once_and_then_left_alone(tmp_path, caplog):
    client = _DeadClient()
    tracker = RunTracker(client, mlflow_settings(_cfg(tmp_path)), "run1", "1")
    with caplog.at_level(logging.WARNING, logger="nexa_core.tracking.tracker"):
        tracker.log_metric_points([("loss", 0.5, 1)])
        tracker.log_metrics({"loss": 0.4}, step=2)
        tracker.set_tags({"a": "b"})
    assert client.calls == 1  # after the first failure nothing is sent (nothing waits on a dead server)
    assert tracker.failure == "log step metrics: ConnectionError: Connection refused"
    assert [r.getMessage().count("stopped") for r in caplog.records] == [1]


def test_disabled_tracking_writes_no_tracking_record(tmp_path):
    from nexa_core.tracking.runs import RECORD, start_run

    cfg = _cfg(tmp_path, enabled=False)
    tracker = start_run(cfg, "r", tags={}, params={"a": "1"}, folder=tmp_path)
    tracker.log_metrics({"loss": 1.0})
    tracker.finish()
    assert not tracker and not (tmp_path / RECORD).exists() and not (tmp_path / "durable").exists()


def test_logging_a_model_leaves_mlflows_process_uri_as_it_was(monkeypatch):
    """The registry sets MLflow's process-wide URI for its call only: an unset URI stays unset (later code still
    follows MLFLOW_TRACKING_URI), and the caller's environment is left as it was."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_state

    from nexa_core.tracking.registry import _process_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(tracking_state, "_tracking_uri", None)
    with _process_uri("sqlite:////tmp/elsewhere.db"):
        assert mlflow.get_tracking_uri() == "sqlite:////tmp/elsewhere.db"
    assert tracking_state._tracking_uri is None and "MLFLOW_TRACKING_URI" not in __import__("os").environ
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    with _process_uri("sqlite:////tmp/elsewhere.db"):
        pass
    assert mlflow.get_tracking_uri() == "http://127.0.0.1:1"
