"""`make dev PORT=...` stops with its whole process group: SIGINT to the group (Ctrl-C in a terminal) or SIGTERM to
it ends make, dagster dev, its webserver, daemon and code server within 30 s, also when make was started with
SIGINT ignored, as a non-interactive shell starts a background job (`make dev &` from a script)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, write_recipe
from tests.process_helpers import free_port, group_alive, instance_home, wait_until_serving

pytestmark = pytest.mark.slow
VENV = Path(sys.executable).parent.parent  # the running venv, so a worktree without its own .venv works too


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sig,started_as", [(signal.SIGINT, "foreground"), (signal.SIGINT, "background job"),
                                            (signal.SIGTERM, "background job")],
                         ids=["ctrl-c", "sigint-to-a-background-job", "sigterm-to-a-background-job"])
def test_make_dev_stops_with_its_whole_group(recipe, tmp_path, sig, started_as):
    home = tmp_path / "home"
    instance_home(home, ROOT / "dagster.yaml")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(NEXA_CONFIG=str(write_recipe(recipe, tmp_path / "tiny.yaml")), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    log_path = tmp_path / "make_dev.log"
    # `-o setup`: the set-up step (pip) is not re-run; VENV is this interpreter's.
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["make", "-o", "setup", "dev", f"PORT={port}", f"DAGSTER_HOME={home}", f"VENV={VENV}"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_ignore_sigint if started_as == "background job" else None)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", proc, log_path)

        os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 30
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(proc.pid)], capture_output=True, text=True).stdout
        assert proc.poll() is not None and not group_alive(proc.pid), \
            f"{signal.Signals(sig).name} left running after 30 s:\n{left}\n{log_path.read_text()[-2000:]}"
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
