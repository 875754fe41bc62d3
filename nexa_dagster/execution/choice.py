"""The executor is configuration, not code: NEXA_EXECUTOR picks it when the code location loads.

    in_process    (default) every step in the launching process: the embedded default, fastest for one chain
    multiprocess  each step in its own process on this machine (outputs through the instance's folder)
    celery        each step on a Celery worker (`dagster-celery/queue` routes GPU steps to queue `gpu`);
                  outputs, and the files they point at, go through S3 (`handoff_io.py`), since workers share no disk
    k8s           each step in a Kubernetes Job of its own (dagster-k8s, the `k8s` extra; GPU steps ask for a GPU
                  through `dagster-k8s/config`); outputs in the instance's folder, which the Helm values mount from
                  the ReadWriteMany volume every pod sees (deploy/helm/values.yaml)

A Celery worker loads the code location with NEXA_EXECUTOR=celery (nexa_dagster/execution/worker.py sets it), so
launcher and workers read and write step outputs in the same place."""

from __future__ import annotations

import os

import dagster as dg

from nexa_core.common.errors import NexaError

EXECUTORS = ("in_process", "multiprocess", "celery", "k8s")


def executor_name() -> str:
    name = os.environ.get("NEXA_EXECUTOR", "").strip().replace("-", "_") or "in_process"
    if name not in EXECUTORS:
        raise NexaError(f"NEXA_EXECUTOR={os.environ['NEXA_EXECUTOR']!r} is not an executor; set it to "
                        f"{', '.join(EXECUTORS)} (in_process is the default)")
    return name


def executor() -> dg.ExecutorDefinition:
    name = executor_name()
    if name == "celery":
        from nexa_dagster.execution.watched import watched_celery_executor

        return watched_celery_executor
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise NexaError("NEXA_EXECUTOR=k8s needs dagster-k8s; install the project with its k8s extra "
                            "(pip install -e '.[k8s]'), as deploy/Dockerfile does") from None
        return k8s_job_executor
    return dg.multiprocess_executor if name == "multiprocess" else dg.in_process_executor


def io_resources() -> dict:
    """The `io_manager` resource the executor needs: S3 for Celery, with the files outputs point at (the `nexa`
    recipe resource gives each worker's storage roots); none (Dagster's filesystem default, under the instance's
    storage folder) otherwise."""
    if executor_name() != "celery":
        return {}
    from nexa_dagster.execution.handoff_io import handoff_s3_io_manager

    return {"io_manager": handoff_s3_io_manager}
