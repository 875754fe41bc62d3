"""The environment allow-list and secret filter: planted credentials never reach a report, the
fingerprint, `nexa summary` output, telemetry files or logs."""

from __future__ import annotations

import json

import pytest

from nexa_core.cli.main import main
from nexa_core.telemetry.fake import FakeNVML
from nexa_core.telemetry.fingerprint import environment_report, fingerprint_hash
from nexa_core.telemetry.secrets import REDACTED, redact, safe_environment


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch):
    # A CUDA_VISIBLE_DEVICES set in the shell that runs the tests would hide some fake GPUs: start from none.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

PLANTED = {
    "AWS_SECRET_ACCESS_KEY": "planted-aws-secret-0001",
    "AWS_ACCESS_KEY_ID": "AKIAPLANTED00000002",
    "AWS_SESSION_TOKEN": "planted-aws-session-0003",
    "NCCL_AUTH_TOKEN": "planted-nccl-token-0004",  # allow-listed prefix, secret name: still dropped
    "OMP_PASSWORD": "planted-omp-password-0005",
    "TOKENIZERS_API_KEY": "planted-tok-key-0006",
    "MLFLOW_TRACKING_TOKEN": "planted-mlflow-0007",
    "HF_TOKEN": "planted-hf-0008",
    "NCCL_CREDENTIALS_FILE": "planted-cred-path-0009",
    "DB_SECRET": "planted-db-secret-0010",
}
KEPT = {"NCCL_DEBUG": "INFO", "NCCL_IB_DISABLE": "1", "OMP_NUM_THREADS": "8", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture
def planted(monkeypatch):
    for k, v in {**PLANTED, **KEPT}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("NEXA_UNRELATED", "not-allow-listed")


def assert_clean(text: str) -> None:
    leaked = [v for v in PLANTED.values() if v in text]
    assert not leaked, f"secrets leaked: {leaked}"


def test_allow_list_keeps_runbook_variables_and_drops_secrets(planted):
    env = safe_environment()
    for k, v in KEPT.items():
        assert env[k] == v
    assert not set(PLANTED) & set(env) and "NEXA_UNRELATED" not in env


def test_redact_drops_secret_keys_and_masks_values(planted):
    doc = {"a": {"api_token": "x", "ok": "uses planted-hf-0008 inline"}, "list": ["planted-db-secret-0010"]}
    out = redact(doc)
    assert "api_token" not in out["a"] and out["a"]["ok"] == f"uses {REDACTED} inline" and out["list"] == [REDACTED]


def test_report_and_fingerprint_hold_no_secret(planted, tmp_path):
    report = environment_report(nvml=FakeNVML.uniform(2), manifests_dir=tmp_path)
    assert_clean(json.dumps(report))
    assert report["environment"] == KEPT
    assert report["gpu_count"] == 2 and report["gpus"][0]["uuid"] == "GPU-fake-0000"
    # the hash depends only on stable, allow-listed parts: a new secret value does not change it
    again = environment_report(nvml=FakeNVML.uniform(2), manifests_dir=tmp_path)
    assert again["fingerprint"] == report["fingerprint"] == fingerprint_hash(report)


def test_fingerprint_changes_with_the_environment_it_describes(planted, monkeypatch):
    before = environment_report(nvml=FakeNVML.uniform(1))["fingerprint"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-planted-secret")
    assert environment_report(nvml=FakeNVML.uniform(1))["fingerprint"] == before
    monkeypatch.setenv("NCCL_IB_DISABLE", "0")
    assert environment_report(nvml=FakeNVML.uniform(1))["fingerprint"] != before
    monkeypatch.setenv("NCCL_IB_DISABLE", "1")
    assert environment_report(nvml=FakeNVML.uniform(1))["fingerprint"] == before
    assert environment_report(nvml=FakeNVML.uniform(2))["fingerprint"] != before  # GPU models and count count
    assert environment_report(nvml=FakeNVML(fail_init=True))["fingerprint"] != before


def test_nexa_summary_output_and_file_hold_no_secret(planted, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("NEXA_DURABLE", str(tmp_path / "durable"))
    assert main(["summary", "--json"]) == 0
    out = capsys.readouterr()
    assert_clean(out.out + out.err + caplog.text)
    text = (tmp_path / "durable" / "runs" / "manifests" / "infra_report.json").read_text()
    assert_clean(text)
    assert json.loads(text)["environment"]["NCCL_DEBUG"] == "INFO"
