"""The Kubernetes Job that dagster-k8s's `k8s_job_executor` would create for one step, rendered offline.

It follows the executor's own path (dagster_k8s/executor.py `launch_step`): the code location's container context,
as the Helm chart passes it to launched runs (`includeConfigInLaunchedRuns`: env secrets, volumes, env), merged
with the step's `dagster-k8s/config` tag (nexa_dagster/gpu_step.py), then `construct_dagster_k8s_job`. Nothing is
sent anywhere: the Job comes back as the plain dict `kubectl apply` would take, so it can be read and checked
against the Kubernetes schemas without a cluster (tests/test_deploy_static.py).

    python -m nexa_dagster.k8s_render trained_model             # the GPU pod of the training step, as YAML
    python -m nexa_dagster.k8s_render training_dataset --values deploy/helm/values.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from nexa_core.common.errors import NexaError

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
RELEASE = "nexa"  # the Helm release name the README installs with; it names the chart's objects
NAMESPACE = "nexa"


def step_tags(asset_name: str) -> dict[str, str]:
    """The tags of the step that materializes `asset_name`, as the executor sees them (JSON strings)."""
    import dagster as dg

    from nexa_dagster.definitions import defs

    key = dg.AssetKey(asset_name)
    if key not in set(defs.resolve_all_asset_keys()):
        raise NexaError(f"no asset {asset_name!r} in the code location; `dg list defs` lists them")
    return dict(defs.resolve_assets_def(key).get_op_def_for_asset_key(key).tags)


def user_deployment(values: dict) -> dict:
    """Our (only) user-code deployment in the chart values."""
    deployments = values["dagster-user-deployments"]["deployments"]
    if len(deployments) != 1:
        raise NexaError(f"{VALUES}: expected one user-code deployment, found {len(deployments)}")
    return deployments[0]


def container_context(values: dict, namespace: str = NAMESPACE):
    """What the chart hands launched runs from the user deployment (its `k8sContainerContext` helper)."""
    from dagster_k8s.container_context import K8sContainerContext

    code = user_deployment(values)
    env = code.get("env") or []
    return K8sContainerContext(
        image_pull_policy=code["image"]["pullPolicy"],
        env_config_maps=[f"{RELEASE}-dagster-user-deployments-{code['name']}-user-env",
                         *(m["name"] for m in code.get("envConfigMaps", []))],
        env_secrets=[s["name"] for s in code.get("envSecrets", [])],
        volume_mounts=code.get("volumeMounts", []), volumes=code.get("volumes", []),
        labels=code.get("labels", {}), resources=code.get("resources", {}), namespace=namespace,
        env=env if isinstance(env, list) else [],  # a map goes into the user-env ConfigMap above instead
    )


def step_job(asset_name: str, values: dict | None = None, run_id: str = "0f1e2d3c-0000-4000-8000-000000000000") -> dict:
    """The Job the k8s executor would create for the step of `asset_name` under these Helm values."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job, get_k8s_job_name, get_user_defined_k8s_config
    from kubernetes.client import ApiClient

    values = yaml.safe_load(VALUES.read_text()) if values is None else values
    code = user_deployment(values)
    context = container_context(values).merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags(asset_name))))
    home = values.get("global", {}).get("dagsterHome", "/opt/dagster/dagster_home")
    launcher = SimpleNamespace(job_image=None, dagster_home=home, instance_config_map=f"{RELEASE}-dagster-instance",
                               postgres_password_secret=values["global"]["postgresqlSecretName"])
    image = f"{code['image']['repository']}:{code['image']['tag']}"
    name = f"dagster-step-{get_k8s_job_name(run_id, asset_name)}"
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(image, launcher), args=["dagster", "api", "execute_step"],
        job_name=name, pod_name=name, component="step_worker", user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": asset_name, "dagster/run-id": run_id},
        env_vars=[{"name": "DAGSTER_RUN_STEP_KEY", "value": asset_name}])
    return ApiClient().sanitize_for_serialization(job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexa_dagster.k8s_render", description=__doc__.splitlines()[0])
    parser.add_argument("asset", help="asset whose step pod to render, e.g. trained_model")
    parser.add_argument("--values", type=Path, default=VALUES, help="Helm values (default: deploy/helm/values.yaml)")
    args = parser.parse_args(argv)
    try:
        job = step_job(args.asset, yaml.safe_load(args.values.read_text()))
    except (NexaError, OSError) as err:
        print(f"k8s_render: error: {err}", file=sys.stderr)
        return 2
    yaml.safe_dump(job, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
