"""deploy/k8s/train-two-nodes.yaml checked offline: an Indexed Job of two GPU pods behind a headless Service, each
pod running the node command with its completion index as node rank, valid against the Kubernetes schemas, and
its recipe overrides a valid two-node config whose rendezvous is pod 0 behind the Service."""

from __future__ import annotations

import yaml

from nexa_core.config import apply_overrides, read_recipe, validate_config
from tests.cli_helpers import ROOT
from tests.test_deploy_static import DEPLOY, GPU_RESOURCE, manifests, validate

MANIFEST = DEPLOY / "k8s" / "train-two-nodes.yaml"


def test_the_two_node_job_validates_and_runs_the_node_command_per_index():
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    for doc in docs:
        validate(doc)
    service = next(d for d in docs if d["kind"] == "Service")
    job = next(d for d in docs if d["kind"] == "Job")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 2
    assert service["spec"]["clusterIP"] == "None" and pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["nexa", "train-node"]
    assert command[command.index("--node-rank") + 1] == "$(JOB_COMPLETION_INDEX)"
    env = {e["name"]: e for e in container["env"]}
    assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert container["resources"]["limits"][GPU_RESOURCE] == container["resources"]["requests"][GPU_RESOURCE]
    # Scratch (checkpoints) on the shared volume: a restarted rank on either node resumes from rank 0's checkpoint.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["NEXA_SCRATCH"]["value"].startswith("/mnt/nexa/") and "/mnt/nexa" in mounts
    claims = {d["metadata"]["name"] for d in manifests() if d["kind"] == "PersistentVolumeClaim"}
    assert {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v} <= claims

    overrides = [command[i + 1] for i, arg in enumerate(command) if arg == "--override"]
    recipe = command[command.index("--config") + 1]
    cfg = validate_config(apply_overrides(read_recipe(ROOT / recipe), overrides))
    d = cfg.training.distributed
    assert d.nodes == spec["completions"] and d.nproc_per_node == "auto" and d.max_restarts > 0
    host, port = d.rdzv_endpoint.rsplit(":", 1)
    assert host == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert int(port) == service["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]
    assert env["NEXA_RUN_ID"]["value"].startswith(cfg.name + "_")
