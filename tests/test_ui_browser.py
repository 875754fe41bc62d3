"""The Dagster UI in a real browser: `dagster dev` on a free loopback port, headless Debian chromium driven by
Playwright (no browser download). It opens the asset graph, launches `training_pipeline` on the tiny recipe
with "Materialize all", follows the run to success through the queue, reads the metadata and the check on
`evaluation_report` and the deployed run on `current_model`, and saves screenshots. Every process it started is
stopped (by process group)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, write_recipe
from tests.process_helpers import free_port, group_alive, instance_home, stop_group, wait_until_serving

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCATION = "nexa_dagster.definitions"


@pytest.fixture
def dagster_dev(recipe, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make setup installs it with apt-get as root)")
    home = tmp_path / "home"
    instance_home(home, ROOT / "dagster.yaml")  # queued runs, gpu pool: the project's instance
    port = free_port()
    recipe["distill"] = {"student_layers": 1, "top_k": 2, "chunk_size": 64}  # the tiny model has 2 layers
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXA_CONFIG": str(write_recipe(recipe, tmp_path / "tiny.yaml")),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "dagster_dev.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-m", LOCATION,
                             "-h", "127.0.0.1", "-p", str(port)], cwd=home, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, tmp_path / "dagster_dev.log")
        yield url, tmp_path, env
    finally:
        stop_group(proc)
        log.close()
        assert not group_alive(proc.pid), "dagster dev left processes behind"


def test_materialize_the_tiny_recipe_from_the_ui(dagster_dev):
    from playwright.sync_api import expect, sync_playwright

    url, tmp_path, env = dagster_dev
    shots = Path(os.environ.get("NEXA_SCREENSHOTS", tmp_path))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # The asset graph of the training group: its assets are drawn as nodes.
            page.goto(f"{url}/locations/{LOCATION}/asset-groups/training", wait_until="domcontentloaded")
            skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog
            try:
                skip.first.click(timeout=15_000)
            except Exception:  # noqa: BLE001 - not shown: nothing to dismiss
                pass
            for name in ("training_dataset", "trained_model", "evaluation_report"):
                expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=120_000)
            page.screenshot(path=str(shots / "ui_asset_graph.png"))

            # Materialize the whole training job (dataset -> model -> evaluation -> gated release) from its page.
            page.goto(f"{url}/locations/{LOCATION}/jobs/training_pipeline", wait_until="domcontentloaded")
            page.get_by_role("button", name="Materialize all").click(timeout=60_000)
            # Launched: the toast links to the run; follow it until it succeeds (queued, then started by the daemon).
            page.get_by_role("link", name="View", exact=True).first.click(timeout=60_000)
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=420_000)
            page.screenshot(path=str(shots / "ui_run_success.png"))

            # The evaluation's metadata and its blocking check, as a user reads them.
            page.goto(f"{url}/assets/evaluation_report", wait_until="domcontentloaded")
            expect(page.get_by_text("accuracy", exact=True).first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("macro_f1", exact=True).first).to_be_visible(timeout=60_000)
            page.goto(f"{url}/assets/evaluation_report?view=checks", wait_until="domcontentloaded")
            expect(page.get_by_text("meets_thresholds").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Passed", exact=True).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(shots / "ui_checks.png"))

            # The one deployment asset names the model the run deployed, with its accuracy.
            deployed = tmp_path / "durable" / "deploy" / "current_model"
            assert (deployed / "config.json").is_file()  # the UI's run really deployed the tiny model
            trained = deployed.resolve().parent.name
            _deployment_shows(page, url, trained)
            page.screenshot(path=str(shots / "ui_current_model.png"))

            # The distillation pipeline on the same instance; the student's page opens with its curves.
            _cli(env, "-m", "nexa_dagster.partitions", "add", "v1")
            _dagster(env, "job", "execute", "-m", LOCATION, "-j", "distillation_pipeline",
                     "--tags", '{"dagster/partition": "v1"}')
            student = next(p.name for p in (tmp_path / "durable" / "runs").iterdir() if p.name.startswith("tiny-student_"))
            _deployment_shows(page, url, deployed.resolve().parent.name)  # the champion, or the student if it won
            page.goto(f"{url}/assets/student_model", wait_until="domcontentloaded")
            page.get_by_text("[Show Markdown]").first.click(timeout=60_000)  # the first entry: "loss curve"
            curve = page.get_by_role("img", name="training loss and validation curves")
            curve.wait_for(timeout=60_000)
            assert curve.evaluate("img => img.complete && img.naturalWidth") > 0  # the image really decodes
            page.screenshot(path=str(shots / "ui_student_curve.png"))

            # Deploys and rollbacks from the CLI show up on the deployment asset (current_model_sensor).
            if deployed.resolve().parent.name != student:
                _cli(env, "-m", "nexa_core.cli.main", "deploy", student, "--force", "--config", env["NEXA_CONFIG"])
            _cli(env, "-m", "nexa_core.cli.main", "deploy", "--rollback", "--config", env["NEXA_CONFIG"])
            assert deployed.resolve().parent.name == trained
            _deployment_shows(page, url, trained, "rollback", wait=150)
            page.screenshot(path=str(shots / "ui_rollback.png"))

            # A run that misses its gate: the check says which metric missed which threshold, and the fix.
            gate = tmp_path / "gate.yaml"
            gate.write_text("resources:\n  nexa:\n    config:\n      training: {optimizer: {lr: 1.0e-12}}\n"
                            "      evaluation: {thresholds: {accuracy: 0.99}}\n")
            assert _dagster(env, "job", "execute", "-m", LOCATION, "-j", "training_pipeline", "-c", str(gate),
                            check=False).returncode != 0
            page.goto(f"{url}/assets/evaluation_report?view=checks", wait_until="domcontentloaded")
            reason = page.get_by_text(re.compile(r"^accuracy 0\.\d{3} < 0\.990 \(evaluation\.thresholds\.accuracy\); "
                                                 r"train longer or on more data, or lower the threshold$"))
            expect(reason.first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Failed", exact=True).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(shots / "ui_failed_gate.png"))
        finally:
            browser.close()


def _deployment_shows(page, url: str, run_id: str, *also: str, wait: float = 60) -> None:
    """Open current_model and wait (reloading) until its latest observation names run_id (and `also`)."""
    from playwright.sync_api import expect

    deadline = time.monotonic() + wait
    page.goto(f"{url}/assets/current_model", wait_until="domcontentloaded")
    while True:
        try:
            for text in (run_id, *also):
                expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload(wait_until="domcontentloaded")
    expect(page.get_by_text("accuracy", exact=True).first).to_be_visible(timeout=10_000)


def _cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=env["DAGSTER_HOME"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 or not check, proc.stderr[-3000:]
    return proc


def _dagster(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(sys.executable).parent / "dagster"), *args], cwd=env["DAGSTER_HOME"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 or not check, proc.stderr[-3000:]
    return proc
