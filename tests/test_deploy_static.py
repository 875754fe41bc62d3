"""deploy/ checked without a cluster, a Docker engine or a GPU node: the Kubernetes objects (the plain manifests
and the Job dagster-k8s's executor builds for a step under our Helm values) against the Kubernetes schemas, the
Helm values against the chart's keys, the Dockerfile (hadolint), the shell scripts (shellcheck), `bootstrap.sh`
in a scratch root (idempotent, dry run writes nothing), and the GPU policy on exactly the GPU assets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from nexa_core.common.errors import NexaError
from nexa_dagster.gpu_step import GPU_RESOURCE, K8S_CONFIG_TAG, gpu_step_tags, k8s_gpu_config
from nexa_dagster.k8s_render import step_job, step_tags, user_deployment
from tests.cli_helpers import ROOT, tree
from tests.helm_values_schema import SCHEMA

DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for; the schemas ship with kubernetes-validate
GPU_ASSETS = {"trained_model", "teacher_model", "teacher_outputs", "student_model", "hpo_trials"}
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def validate(obj: dict) -> None:
    """Strict: unknown fields fail; a kind without a schema fails too (the CLI would only warn)."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def manifests() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: it comes with the dev extras (pip install -e '.[dev]')")
    return found


def test_plain_manifests_validate_and_hold_no_secret_value():
    docs = manifests()
    assert {d["kind"] for d in docs} >= {"Namespace", "PersistentVolumeClaim", "Secret"}
    for doc in docs:
        validate(doc)
        if doc["kind"] == "Secret":  # a template of keys: values come from `kubectl create secret --from-env-file`
            assert not any((doc.get("stringData") or {}).values()) and not doc.get("data"), doc["metadata"]["name"]


def test_exactly_the_gpu_pool_assets_carry_the_gpu_step_tags():
    from nexa_dagster.definitions import defs

    ops = {k.path[-1]: defs.resolve_assets_def(k).get_op_def_for_asset_key(k) for k in defs.resolve_all_asset_keys()}
    expected = gpu_step_tags()
    gpu = {name for name, op in ops.items() if op.pool == "gpu"}
    assert gpu >= GPU_ASSETS, GPU_ASSETS - gpu
    for name, op in ops.items():
        # Dagster keeps a dict tag as JSON text (keys sometimes sorted): compare what it means.
        carried = {k: json.loads(op.tags[k]) if k == K8S_CONFIG_TAG else op.tags[k] for k in expected if k in op.tags}
        assert carried == (expected if name in gpu else {}), name


def test_a_gpu_step_pod_asks_for_a_gpu_on_a_gpu_node_and_validates():
    job = step_job("trained_model")
    validate(job)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {GPU_RESOURCE: "1"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    # What the chart passes launched runs from our user deployment reaches the step pod: image, secrets, volumes.
    code = user_deployment(VALUES)
    assert container["image"] == f"{code['image']['repository']}:{code['image']['tag']}"
    assert {"secretRef": {"name": "nexa-env"}} in container["envFrom"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {m["mountPath"] for m in code["volumeMounts"]}
    assert {e["name"]: e.get("value") for e in container["env"]}["NEXA_DURABLE"] == "/mnt/nexa/durable"


def test_a_cpu_step_pod_asks_for_no_gpu():
    job = step_job("training_dataset")
    validate(job)
    assert GPU_RESOURCE not in json.dumps(job)
    assert "nodeSelector" not in job["spec"]["template"]["spec"]


def test_the_gpu_pod_follows_the_cluster_settings_and_refuses_bad_ones():
    config = k8s_gpu_config({"NEXA_K8S_GPUS": "2", "NEXA_K8S_GPU_NODE_SELECTOR": "pool=a100, zone=b",
                             "NEXA_K8S_GPU_TOLERATION": ""})
    assert config == {"container_config": {"resources": {"limits": {GPU_RESOURCE: "2"}}},
                      "pod_spec_config": {"node_selector": {"pool": "a100", "zone": "b"}}}
    assert "pod_spec_config" not in k8s_gpu_config({"NEXA_K8S_GPU_NODE_SELECTOR": "", "NEXA_K8S_GPU_TOLERATION": ""})
    for env, name in (({"NEXA_K8S_GPUS": "0"}, "NEXA_K8S_GPUS"), ({"NEXA_K8S_GPU_NODE_SELECTOR": "a100"},
                                                                  "NEXA_K8S_GPU_NODE_SELECTOR")):
        with pytest.raises(NexaError, match=name):
            k8s_gpu_config(env)
    assert json.loads(step_tags("student_model")[K8S_CONFIG_TAG]) == k8s_gpu_config()


def test_helm_values_fit_the_chart_and_the_manifests():
    jsonschema.validate(VALUES, SCHEMA)
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    pg = VALUES["postgresql"]
    assert not pg["enabled"] and not VALUES["generatePostgresqlPasswordSecret"] and pg["postgresqlPassword"] == ""
    assert pg["postgresqlScheme"] == "postgresql+psycopg2"  # FIELD_NOTES: plain postgresql:// means psycopg 3
    code = user_deployment(VALUES)
    assert code["codeServerArgs"] == ["-m", "nexa_dagster.definitions"] and code["includeConfigInLaunchedRuns"]["enabled"]
    # The Kubernetes-typed parts of the user deployment, as the pod the chart makes of them.
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "code-server"},
              "spec": {"securityContext": code["podSecurityContext"], "volumes": code["volumes"],
                       "containers": [{"name": "dagster", "image": "x", "env": code["env"],
                                       "volumeMounts": code["volumeMounts"], "securityContext": code["securityContext"],
                                       "ports": [{"containerPort": code["port"]}]}]}})
    # Every Secret and volume claim the values name is one of deploy/k8s/, and every storage path is mounted.
    docs = manifests()
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    assert {s["name"] for s in code["envSecrets"]} | {VALUES["global"]["postgresqlSecretName"]} <= secrets
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert {v["persistentVolumeClaim"]["claimName"] for v in code["volumes"] if "persistentVolumeClaim" in v} <= claims
    mounts = [m["mountPath"] for m in code["volumeMounts"]]
    for env in code["env"]:
        if env["name"] in ("NEXA_SCRATCH", "NEXA_DURABLE", "NEXA_SHARED"):
            assert any(env["value"].startswith(m + "/") or env["value"] == m for m in mounts), env


def test_the_image_passes_hadolint_and_runs_as_a_numeric_non_root_user():
    proc = subprocess.run([tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:", text, re.M)
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), user  # numeric, so the kubelet can check runAsNonRoot
    assert ".env" in (DEPLOY / "Dockerfile.dockerignore").read_text().split()


def test_the_shell_scripts_pass_shellcheck():
    scripts = sorted(DEPLOY.rglob("*.sh"))
    assert DEPLOY / "bootstrap.sh" in scripts
    proc = subprocess.run([tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def bootstrap(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "planted-bootstrap-secret-0001"}
    proc = subprocess.run(["bash", str(DEPLOY / "bootstrap.sh"), "--root", str(root), *args], capture_output=True,
                          text=True, env=env, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_bootstrap_in_a_scratch_root_is_idempotent_and_its_dry_run_writes_nothing(tmp_path):
    node = tmp_path / "node"
    node.mkdir()
    first, second = bootstrap(node, "--dry-run").stdout, bootstrap(node, "--dry-run").stdout
    assert first == second and tree(node) == {}
    assert "would   write /etc/nexa/nexa.env" in first and first.rstrip().endswith("would make 6 change(s)")
    assert "would   apt-get" not in first and "skip    AWS CLI v2 (scratch root)" in first  # nothing system-wide

    made = bootstrap(node).stdout
    assert made.count("\nchange  ") == 6 and made.rstrip().endswith("made 6 change(s)")
    written = tree(node)
    env = dict(line.split("=", 1) for line in (node / "etc/nexa/nexa.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["NEXA_S3_PREFIX"] == "s3://nexacompute/ML_Checkpoints" and env["NEXA_REPO"] == str(ROOT)
    assert {k: env[k] for k in ("NCCL_DEBUG", "NCCL_IB_DISABLE", "NCCL_P2P_DISABLE", "TOKENIZERS_PARALLELISM",
                                "OMP_NUM_THREADS")} == {"NCCL_DEBUG": "INFO", "NCCL_IB_DISABLE": "1",
                                                        "NCCL_P2P_DISABLE": "0", "TOKENIZERS_PARALLELISM": "false",
                                                        "OMP_NUM_THREADS": "8"}
    assert all((node / env[k].lstrip("/")).is_dir() for k in ("NEXA_SCRATCH", "NEXA_DURABLE", "NEXA_SHARED"))
    unit = (node / "etc/systemd/system/nexa-worker.service").read_text()
    assert "EnvironmentFile=/etc/nexa/nexa.env" in unit
    assert "celery -A nexa_dagster.execution.worker worker -Q dagster,gpu" in unit  # the app the executor expects
    assert not any("planted-bootstrap-secret" in p.read_text() for p in node.rglob("*") if p.is_file())

    for again in (bootstrap(node).stdout, bootstrap(node, "--dry-run").stdout):
        assert again.rstrip().endswith("nothing to change") and "change  " not in again and "would   " not in again
    assert tree(node) == written

    # Another worker is a change to the unit alone, and only that.
    code_server = bootstrap(node, "--worker", "code-server").stdout
    assert code_server.count("\nchange  ") == 1 and "change  write /etc/systemd/system/nexa-worker.service" in code_server


def test_bootstrap_refuses_bad_options_in_one_line_and_writes_nothing(tmp_path):
    for args, word in ((["--worker", "gpu"], "--worker"), (["--s3-prefix", "bucket"], "--s3-prefix"),
                       (["--scratch", "relative/path"], "absolute")):
        proc = bootstrap(tmp_path, *args, check=False)
        assert proc.returncode == 2 and word in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert tree(tmp_path) == {}
