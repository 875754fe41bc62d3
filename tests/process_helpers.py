"""Servers started by tests: a free loopback port, and stopping a whole process group (dagster dev / the daemon
spawn code servers and run workers) so nothing is left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """Stop the whole session: SIGINT (dagster's graceful stop; `dagster dev` ignores SIGTERM), then SIGKILL
    whatever is left, then wait until the group is gone."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + wait
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_alive(proc.pid):
            break


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def instance_home(home, project_yaml) -> None:
    """A DAGSTER_HOME with the project's dagster.yaml (queue, pools) and its tables, its relative folders made
    absolute so the test process opens the same instance as the servers it started."""
    import dagster as dg

    home.mkdir(parents=True, exist_ok=True)
    text = project_yaml.read_text().replace("base_dir: .dagster", f"base_dir: {home}/.dagster")
    (home / "dagster.yaml").write_text(text)
    # Create the SQLite tables now: processes started together (webserver, daemon, code server, two CLI runs)
    # would race to create them ("more than one head", "table already exists").
    dg.DagsterInstance.from_config(str(home)).dispose()


def wait_until_serving(url: str, proc: subprocess.Popen, log_path, timeout: float = 180) -> None:
    """Wait until `dagster dev` answers on `url` (its /server_info); fail with the end of its log if it exits or
    does not answer within `timeout` seconds."""
    import urllib.request
    from pathlib import Path

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dagster dev did not start: {Path(log_path).read_text()[-3000:]}") from None
            time.sleep(1)
