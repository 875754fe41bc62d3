"""The one place a step is declared a GPU step. `@dg.asset(**GPU_STEP, ...)` gives it, together:

- pool `gpu`: one slot per GPU (`concurrency.pools` in the instance's dagster.yaml), so steps wait for a GPU
  instead of sharing one;
- `dagster-celery/queue: gpu`: the Celery executor sends the step to workers on GPU nodes (`-q dagster,gpu`);
- `dagster-k8s/config`: the Kubernetes executor (`k8s_job_executor`) starts the step in its own pod that asks for
  `nvidia.com/gpu` (NVIDIA's device plugin), lands on a GPU node and tolerates the GPU nodes' taint.

Each executor reads only its own tag, so one declaration serves every deployment. A cluster that labels or taints
its GPU nodes otherwise sets, before the code location loads:

    NEXA_K8S_GPUS=1                                        # GPUs per GPU step pod
    NEXA_K8S_GPU_NODE_SELECTOR=nvidia.com/gpu.present=true  # key=value[,key=value]; empty: no node selector
    NEXA_K8S_GPU_TOLERATION=nvidia.com/gpu                 # taint key tolerated (NoSchedule); empty: none
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nexa_core.common.errors import NexaError

GPU_POOL = "gpu"
CELERY_QUEUE_TAG = "dagster-celery/queue"
K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"  # the extended resource NVIDIA's device plugin advertises on each GPU node
# The label NVIDIA's GPU Feature Discovery (part of the GPU operator) puts on every node with a GPU.
DEFAULT_NODE_SELECTOR = "nvidia.com/gpu.present=true"


def _node_selector(spec: str) -> dict[str, str]:
    pairs = [item.strip() for item in spec.split(",") if item.strip()]
    if any("=" not in item or not item.split("=", 1)[0] for item in pairs):
        raise NexaError(f"NEXA_K8S_GPU_NODE_SELECTOR={spec!r}: expected key=value[,key=value], "
                        f"e.g. {DEFAULT_NODE_SELECTOR}, or empty for no node selector")
    return dict(item.split("=", 1) for item in pairs)


def k8s_gpu_config(environ: Mapping[str, str] | None = None) -> dict:
    """The `dagster-k8s/config` of a GPU step: GPU limit, node selector, toleration (see the module docstring)."""
    env = os.environ if environ is None else environ
    gpus = env.get("NEXA_K8S_GPUS", "1").strip()
    if not gpus.isdigit() or int(gpus) < 1:
        raise NexaError(f"NEXA_K8S_GPUS={gpus!r}: expected a whole number of GPUs per step, at least 1")
    selector = _node_selector(env.get("NEXA_K8S_GPU_NODE_SELECTOR", DEFAULT_NODE_SELECTOR))
    taint = env.get("NEXA_K8S_GPU_TOLERATION", GPU_RESOURCE).strip()
    pod_spec: dict = {}
    if selector:
        pod_spec["node_selector"] = selector
    if taint:
        pod_spec["tolerations"] = [{"key": taint, "operator": "Exists", "effect": "NoSchedule"}]
    # Extended resources are requested by their limit (Kubernetes sets the request equal to it).
    config: dict = {"container_config": {"resources": {"limits": {GPU_RESOURCE: gpus}}}}
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return config


def gpu_step_tags(environ: Mapping[str, str] | None = None) -> dict:
    """The op tags of a GPU step: its Celery queue and its Kubernetes pod."""
    return {CELERY_QUEUE_TAG: GPU_POOL, K8S_CONFIG_TAG: k8s_gpu_config(environ)}


# Read once, when the code location loads: every GPU step of a deployment gets the same pod.
GPU_STEP = {"pool": GPU_POOL, "op_tags": gpu_step_tags()}
