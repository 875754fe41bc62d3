"""The torchrun side of a distributed run: its spec file, the agent command of each node, the workers' environment,
and what every failed rank left behind.

The spec (`launch.json`) lives in the run's folder under the durable root, which a fleet shares between nodes, so
a node that joins the run reads the same config, dataset and entry module as node 0 (nexa_core/cli/node.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig

SPEC = "launch.json"
FAILURES = "failures"  # one JSON file per node agent whose workers failed: failures/node-<rank>.json


def spec_path(layout: Layout, run_id: str) -> Path:
    return layout.run_dir(run_id) / SPEC


def write_spec(cfg: NexaConfig, path: Path, run_id: str, *, entry: str, payload: dict, extra: dict | None = None) -> dict:
    """Write the spec every node launches from; leftovers of an earlier attempt of the run (failure reports) go."""
    d = cfg.training.distributed
    spec = {"run_id": run_id, "entry": entry, "config": cfg.model_dump(mode="json"),
            "torchrun": {"nnodes": d.nodes, "nproc_per_node": d.per_node(cfg.training.device),
                         "rdzv_endpoint": d.rdzv_endpoint, "max_restarts": d.max_restarts},
            "env": {k: v for k, v in d.env.items() if v != ""}, **payload, **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path.parent / FAILURES).glob("*.json"):
        old.unlink()
    atomic_write_json(path, spec)
    return spec


def read_spec(path: Path, wait_s: float = 0.0) -> dict:
    """The spec at `path`, waiting up to `wait_s` seconds for node 0 to write it (pods of a job start in any order)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return json.loads(Path(path).read_text())
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise NexaError(f"--spec {path}: no such file; start node 0 first (it writes the spec into the run's "
                                "folder on the shared store), or pass --wait SECONDS") from None
            time.sleep(1.0)
        except json.JSONDecodeError as err:
            raise NexaError(f"--spec {path}: not a launch spec ({err}); pass the launch.json of a run") from None


def agent_command(spec: dict, path: Path, node_rank: int = 0) -> list[str]:
    """The command that runs this node's torchrun agent (through nexa_core.training.agent, which reports failures)."""
    t = spec["torchrun"]
    args = [f"--nproc-per-node={t['nproc_per_node']}", f"--max-restarts={t['max_restarts']}"]
    if t["nnodes"] == 1 and not t["rdzv_endpoint"]:
        args.insert(0, "--standalone")
    else:  # c10d: ranks are handed out by the rendezvous; --node-rank only names this node's failure report
        args += [f"--nnodes={t['nnodes']}", "--rdzv-backend=c10d", f"--rdzv-endpoint={t['rdzv_endpoint']}",
                 f"--rdzv-id={spec['run_id']}"]
    report = Path(path).parent / FAILURES / f"node-{node_rank}.json"
    return [sys.executable, "-m", "nexa_core.training.agent", str(report), *args, "-m", spec["entry"], str(path)]


def node_command(path: Path, node_rank: str = "N") -> str:
    """What an operator runs on every other node to join the run (docs/training.md, "Across nodes")."""
    return f"nexa train-node --spec {path} --node-rank {node_rank}"


# torchrun >= 2.5 shares its rendezvous TCPStore with the workers' process group by default; after a restart the
# new workers can read the previous attempt's addresses from it and fail to connect ("Gloo connectFullMesh failed",
# NCCL "Connection refused"; pytorch/pytorch#135712). A store per attempt makes --max-restarts work.
AGENT_ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def worker_env(spec: dict, environ: dict | None = None) -> dict[str, str]:
    """The agent's environment: the config's defaults (NCCL, OpenMP) under the real environment, which wins."""
    environ = dict(os.environ if environ is None else environ)
    return {**AGENT_ENV, **spec.get("env", {}), **environ}


def failure_summary(run_dir: Path) -> str | None:
    """One line naming every failed rank (from the agents' reports of every node), or None when none reported."""
    rows = []
    for report in sorted((Path(run_dir) / FAILURES).glob("node-*.json")):
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        rows += [((bool(f.get("stopped")), f.get("timestamp", 0)), data, f) for f in data.get("failures", [])]
    parts = []
    # Causes first: workers their agent stopped (SIGTERM) after another failed come last, then by time.
    for _, data, f in sorted(rows, key=lambda row: row[0]):
        how = f"signal {f['signal']}" if f.get("signal") else f"exit code {f.get('exitcode')}"
        message = (f.get("message") or "").strip().splitlines()
        parts.append(f"rank {f['rank']} (node {data.get('node_rank')}, local rank {f.get('local_rank')}): {how}"
                     + (f": {message[-1][:300]}" if message else ""))
    return "; ".join(parts) or None


def join_run(path: Path, node_rank: int, wait_s: float = 0.0) -> None:
    """Run node `node_rank`'s agent for the run whose spec is at `path` (waiting for it up to `wait_s` seconds)."""
    spec = read_spec(path, wait_s)
    if spec["torchrun"]["nnodes"] < 2:
        raise NexaError(f"--spec {path}: run {spec['run_id']} trains on one node (training.distributed.nodes=1); "
                        "there is nothing to join")
    code = subprocess.run(agent_command(spec, path, node_rank), env=worker_env(spec)).returncode
    if code != 0:
        why = failure_summary(Path(path).parent) or f"torchrun exit code {code}; see the log above"
        raise NexaError(f"node {node_rank} of run {spec['run_id']} failed: {why}")
