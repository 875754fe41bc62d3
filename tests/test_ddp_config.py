"""`training.distributed` without starting a process: nodes x nproc_per_node (world_size kept), one-line refusals,
the runbook's NCCL/OpenMP defaults under the real environment, each node's torchrun command, the node command's
refusals, and work keys unchanged for recipes written before these fields."""

from __future__ import annotations

import hashlib
import json

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import validate_config
from nexa_core.distributed_config import RUNBOOK_ENV
from nexa_core.training.record import work_key
from nexa_core.training.torchrun import agent_command, worker_env, write_spec
from tests.cli_helpers import nexa_in_process, write_recipe


def _cfg(device: str = "cpu", **distributed):
    return validate_config({"name": "t", "data": {"path": "x.csv"}, "training": {"device": device,
                                                                               "distributed": distributed}})


@pytest.mark.parametrize(("distributed", "message"), [
    ({"nodes": 2}, r"training\.distributed: nodes=2 needs training\.distributed\.rdzv_endpoint"),
    ({"nodes": 2, "nproc_per_node": 2, "world_size": 3, "rdzv_endpoint": "h:1"},
     r"world_size=3 contradicts nodes=2 x nproc_per_node=2 \(= 4\); set training\.distributed\.world_size=4"),
    ({"nodes": 2, "world_size": 3, "rdzv_endpoint": "h:1"}, r"world_size=3 is not a multiple of nodes=2"),
    ({"nproc_per_node": "auto", "world_size": 2}, r"world_size=2 and nproc_per_node=auto contradict"),
    ({"nproc_per_node": 0}, r"training\.distributed\.nproc_per_node: use a number of processes \(1 or more\) or auto"),
    ({"rdzv_endpoint": "node0"}, r"training\.distributed\.rdzv_endpoint: use host:port"),
    ({"rdzv_endpoint": "node0:70000"}, r"training\.distributed\.rdzv_endpoint: use host:port"),
    ({"env": {"NCCL DEBUG": "INFO"}}, r"training\.distributed\.env: 'NCCL DEBUG' is not an environment variable"),
    ({"max_restarts": -1}, r"training\.distributed\.max_restarts"),
])
def test_bad_distributed_settings_are_refused_in_one_line_naming_the_field(distributed, message):
    with pytest.raises(NexaError, match=message) as caught:
        _cfg(**distributed)
    assert "\n" not in str(caught.value)


def test_world_size_alone_works_as_before_and_means_processes_on_one_node():
    cfg = _cfg(world_size=4)
    d = cfg.training.distributed
    assert (cfg.training.processes(), d.per_node("cpu"), d.nodes) == (4, 4, 1)
    assert _cfg().training.processes() == 1
    assert _cfg(nodes=2, nproc_per_node=3, rdzv_endpoint="n0:29400").training.processes() == 6
    assert _cfg(nodes=2, world_size=4, rdzv_endpoint="n0:29400").training.distributed.per_node() == 2
    # A dumped config validates again to the same thing: nothing unset was filled in.
    assert validate_config(cfg.model_dump(mode="json")).training.distributed == d


def test_auto_is_one_process_per_visible_gpu_and_one_on_cpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert _cfg("auto", nproc_per_node="auto").training.processes() == 3
    assert _cfg("cpu", nproc_per_node="auto").training.processes() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert _cfg("auto", nproc_per_node="auto").training.processes() == 1


def test_work_keys_count_the_world_size_and_seed_only():
    key = work_key(_cfg(world_size=2), "v1")
    assert key == work_key(_cfg(nproc_per_node=2), "v1")
    assert key == work_key(_cfg(nodes=2, nproc_per_node=1, rdzv_endpoint="n0:1", max_restarts=3,
                                env={"NCCL_DEBUG": "WARN"}), "v1")
    assert key != work_key(_cfg(world_size=4), "v1")
    # A recipe without these fields keeps the key it had when `distributed` held only world_size and seed.
    cfg = _cfg()
    payload = cfg.model_dump(include={"model": True, "training": True},
                             exclude={"training": {"device", "compile", "packing", "dataloader_workers"},
                                      "model": {"dropout"}})
    payload["training"].update(precision="fp32", tf32=False)  # the fast path's `auto` keys as what it replaced
    payload["training"]["optimizer"]["name"] = "adamw_torch"
    payload["training"]["distributed"] = {"world_size": 1, "seed": 42}
    payload |= {"dataset_version": "v1", "init_from": "None", "pairs": "None", "kd": None}
    assert work_key(cfg, "v1") == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def test_the_runbook_env_reaches_the_workers_under_the_real_environment(tmp_path):
    assert _cfg().training.distributed.env == RUNBOOK_ENV
    cfg = _cfg(nproc_per_node=2, env={"NCCL_DEBUG": "WARN", "OMP_NUM_THREADS": ""})
    spec = write_spec(cfg, tmp_path / "launch.json", "t_20260101_000000", entry="m", payload={})
    assert spec["env"] == {"NCCL_DEBUG": "WARN", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "0"}
    env = worker_env(spec, {"NCCL_IB_DISABLE": "0", "PATH": "/bin"})
    assert env["NCCL_IB_DISABLE"] == "0" and env["NCCL_DEBUG"] == "WARN" and "OMP_NUM_THREADS" not in env
    assert json.loads((tmp_path / "launch.json").read_text()) == spec


def test_each_node_runs_torchrun_with_the_specs_rendezvous(tmp_path):
    path = tmp_path / "launch.json"
    one = write_spec(_cfg(nproc_per_node=2, max_restarts=1), path, "t_20260101_000000", entry="m", payload={})
    assert agent_command(one, path)[3:] == [str(tmp_path / "failures" / "node-0.json"), "--standalone",
                                            "--nproc-per-node=2", "--max-restarts=1", "-m", "m", str(path)]
    two = write_spec(_cfg(nodes=2, nproc_per_node=1, rdzv_endpoint="n0:29400"), path, "t_20260101_000000",
                     entry="m", payload={})
    command = agent_command(two, path, node_rank=1)
    assert command[1:4] == ["-m", "nexa_core.training.agent", str(tmp_path / "failures" / "node-1.json")]
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=n0:29400", "--rdzv-id=t_20260101_000000",
            "--max-restarts=0"} <= set(command)


def test_the_node_command_refuses_a_missing_or_single_node_spec_in_one_line(tmp_path):
    code, _, err = nexa_in_process("train-node", "--spec", str(tmp_path / "launch.json"), "--node-rank", "1",
                                   "--wait", "0")
    assert code != 0 and "launch.json: no such file; start node 0 first" in err and err.count("\n") == 1
    write_spec(_cfg(nproc_per_node=2), tmp_path / "launch.json", "t_20260101_000000", entry="m", payload={})
    code, _, err = nexa_in_process("train-node", "--spec", str(tmp_path / "launch.json"), "--node-rank", "1")
    assert code != 0 and "trains on one node (training.distributed.nodes=1); there is nothing to join" in err
    code, _, err = nexa_in_process("train-node", "--node-rank", "1")
    assert code != 0 and "pass --spec <run folder>/launch.json, or --config and --run-id" in err
    # With the recipe and the run id, a joining node finds the spec in that run's folder under the durable root.
    recipe = write_recipe({"name": "t", "data": {"path": "x.csv"}, "storage": {"durable": str(tmp_path / "durable")}},
                          tmp_path / "recipe.yaml")
    code, _, err = nexa_in_process("train-node", "--config", str(recipe), "--run-id", "t_20260101_000000",
                                   "--node-rank", "1", "--wait", "0")
    assert code != 0 and f"{tmp_path / 'durable' / 'runs' / 't_20260101_000000' / 'launch.json'}: no such file" in err


def test_the_launchpad_takes_nproc_per_node_as_a_number_or_auto():
    from nexa_dagster.resources.recipe import recipe_from_values

    for value, processes in ((2, 2), ("auto", 1)):
        cfg = _cfg(nproc_per_node=value)
        assert recipe_from_values(cfg.model_dump(mode="json")).core().training.processes() == processes
