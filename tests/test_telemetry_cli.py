"""`nexa monitor` (live view, no-GPU fallback, Ctrl-C) and `nexa summary` (infra_report.json)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nexa_core.cli.main import main
from nexa_core.telemetry import notice
from nexa_core.telemetry.fake import FakeGPU, FakeNVML
from nexa_core.telemetry.fingerprint import git_commit
from nexa_core.telemetry.monitor import run_monitor
from tests.cli_helpers import ROOT


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch):
    # A CUDA_VISIBLE_DEVICES set in the shell that runs the tests would hide some fake GPUs: start from none.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_monitor_shows_every_gpu_and_its_processes():
    fake = FakeNVML([FakeGPU(name="NVIDIA H100 80GB HBM3", util_pct=[87], memory_used_mb=[40000], power_w=[612],
                             temperature_c=[71], processes=[(os.getpid(), 3000)]),
                     FakeGPU(name="NVIDIA H100 80GB HBM3", uuid="GPU-b", util_pct=[3], power_w=[71])])
    out = io.StringIO()
    assert run_monitor(0.01, count=2, nvml=fake, out=out) == 0
    text = out.getvalue()
    assert text.count("nexa monitor") == 2
    first = text.split("nexa monitor")[1]
    assert "NVIDIA H100 80GB HBM3" in first and "40000/81559" in first and " 612 " in first and " 71" in first
    comm = open(f"/proc/{os.getpid()}/comm").read().strip()  # names come from comm, never the command line
    assert f"pid {os.getpid()}" in first and "3000 MB" in first and comm in first
    assert "cpu " in first and "memory" in first
    assert fake.calls[-1] == "nvmlShutdown"


def test_monitor_without_gpu_says_so_once_and_shows_cpu():
    out = io.StringIO()
    assert run_monitor(0.01, count=3, nvml=FakeNVML(fail_init=True), out=out) == 0
    text = out.getvalue()
    assert text.count("no GPU") == 1 and text.count("cpu ") == 3 and "gpu " not in text.split("\n", 1)[1]


def test_monitor_ctrl_c_in_process_returns_zero():
    def sleep(_):
        raise KeyboardInterrupt

    out = io.StringIO()
    assert run_monitor(5, nvml=FakeNVML.uniform(1), out=out, sleep=sleep) == 0


def test_nexa_monitor_subprocess_exits_cleanly_on_sigint():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nexa_core.cli.main", "monitor", "--interval", "0.2"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.strip(), proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "nexa monitor" in first + out and "cpu " in first + out


def test_monitor_rejects_bad_interval(capsys):
    assert main(["monitor", "--interval", "0"]) == 2
    assert "--interval 0.0: must be a positive number" in capsys.readouterr().err


def test_nexa_summary_writes_infra_report(tmp_path, monkeypatch, capsys):
    notice.reset()
    manifests = tmp_path / "durable" / "runs" / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "tiny_20260101_000000.json").write_text("{}")
    monkeypatch.setenv("NEXA_DURABLE", str(tmp_path / "durable"))
    monkeypatch.setenv("NCCL_DEBUG", "INFO")
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    report = json.loads((manifests / "infra_report.json").read_text())
    assert f"fingerprint  {report['fingerprint']}" in out and f"written: {manifests / 'infra_report.json'}" in out
    for key in ("python", "cuda", "cudnn", "nccl", "gpus", "host", "git_commit", "environment", "manifests"):
        assert key in report
    for name in ("torch", "transformers", "dagster"):
        assert report["packages"][name]  # installed here: real version strings
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["environment"]["NCCL_DEBUG"] == "INFO"
    assert [m["run_id"] for m in report["manifests"]] == ["tiny_20260101_000000"]  # not the report itself
    assert report["host"]["cpu_count"] == os.cpu_count() and report["host"]["memory_total_mb"] > 0
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert report["git_commit"] == head
    # a second summary replaces the file atomically and keeps the same fingerprint
    assert main(["summary"]) == 0
    assert json.loads((manifests / "infra_report.json").read_text())["fingerprint"] == report["fingerprint"]


def test_git_absent_or_not_a_checkout_is_said(tmp_path, monkeypatch):
    assert git_commit(tmp_path)["commit"] is None and "not a git checkout" in git_commit(tmp_path)["note"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    info = git_commit(ROOT)
    assert info["commit"] is None and "git is not available" in info["note"]


@pytest.mark.slow
def test_nexa_train_files_telemetry_and_fingerprint_beside_the_run(recipe, tmp_path, capsys):
    from tests.cli_helpers import write_recipe

    path = write_recipe(recipe, tmp_path / "recipe.yaml")
    assert main(["train", "--config", str(path), "--override", "telemetry.interval_s=0.2",
                 "--override", "telemetry.price_per_gpu_hour=3.0"]) == 0
    text = capsys.readouterr().out
    out = json.loads(text[text.index('{\n  "run_id"'):])
    run_dir = tmp_path / "durable" / "runs" / out["run_id"]
    train = json.loads((run_dir / "telemetry" / "train.json").read_text())
    evaluate = json.loads((run_dir / "telemetry" / "evaluate.json").read_text())
    assert train["stage"] == "train" and evaluate["stage"] == "evaluate" and train["interval_s"] == 0.2
    assert train["samples"] >= 2 and len((run_dir / "telemetry" / "train.jsonl").read_text().splitlines()) == train["samples"]
    assert train["price_per_gpu_hour"] == 3.0 and out["train_cost_usd"] == train["cost_usd"]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["environment_fingerprint"] == train["environment_fingerprint"]
    assert json.loads((run_dir / "environment.json").read_text())["fingerprint"] == record["environment_fingerprint"]
    if train["gpu_count"] == 0:  # this machine: the CPU path
        assert train["source"] == "host" and out["train_cost_usd"] == 0 and train["cpu_util_mean_pct"] is not None
    bad = main(["train", "--config", str(path), "--override", "telemetry.interval_s=0"])
    assert bad == 2 and "telemetry.interval_s" in capsys.readouterr().err
