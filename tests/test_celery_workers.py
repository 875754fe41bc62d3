"""`training_pipeline` with its steps on Celery workers (NEXA_EXECUTOR=celery), as production runs it: two real
workers on this machine's RabbitMQ (a vhost of the test's own), one consuming the default queue and one the `gpu`
queue, each in its own process group; the instance on deploy/dagster.yaml over a fresh PostgreSQL database; step
outputs and compute logs on S3 (a loopback moto_server).

The launcher and each worker have storage roots of their own (NEXA_SCRATCH/DURABLE/SHARED), as machines without a
shared disk would: the dataset, the model and its run folder reach the next step's worker through S3 with the step
outputs (nexa_dagster/execution/handoff_io.py), never through a path another worker wrote.

One test, two runs (each costs ~40 s on 2 cores): the gpu worker is killed mid-training, which fails the run with
the reason and publishes nothing; the worker comes back and a re-run resumes the interrupted training and
succeeds. In both runs the GPU step runs on the gpu worker and every other step on the default one."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from nexa_core.common.layout import Layout
from tests.cli_helpers import write_recipe
from tests.postgres_helpers import fresh_database
from tests.production_helpers import (
    BIN,
    BUCKET,
    Worker,
    execute_job,
    finish,
    production_env,
    production_home,
    production_instance,
    rabbit_vhost,
    s3,  # noqa: F401 (a fixture)
)
from tests.test_storage_s3 import admin_client
from tests.tiny import make_tiny_bert

pytestmark = pytest.mark.slow
GPU_STEPS = {"trained_model"}  # the training_pipeline's steps in pool `gpu`
RELEASE = ("evaluation_report", "run_manifest", "model_package", "promotion", "run_mirror")  # after training


@pytest.fixture
def fleet(request, s3, tmp_path, tiny_model, tiny_csv):
    """A launcher's environment and two workers: 'cpu' on queue dagster, 'gpu' on queue gpu. Parametrized with
    "distill", the recipe distills a 4-layer teacher into a 2-layer student, and a third worker, 'serve', holds
    the deployment register (NEXA_DEPLOY_QUEUE=deploy)."""
    from tests.conftest import tiny_recipe

    distill = getattr(request, "param", None) == "distill"
    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path)
    if distill:
        recipe["model"]["name_or_path"] = str(make_tiny_bert(tmp_path / "teacher-base", layers=4))
        recipe["distill"] = {"student_layers": 2, "top_k": 2, "chunk_size": 64}
    del recipe["storage"]  # each machine's roots come from its environment
    home = production_home(tmp_path / "home")
    with fresh_database("nexa_celery") as database, rabbit_vhost() as broker:
        env = {**production_env(home, database, s3, f"celery-{uuid.uuid4().hex[:8]}"), "NEXA_EXECUTOR": "celery",
               "NEXA_CELERY_BROKER": broker, "NEXA_CONFIG": str(write_recipe(recipe, tmp_path / "tiny.yaml")),
               **({"NEXA_DEPLOY_QUEUE": "deploy"} if distill else {})}
        tag = uuid.uuid4().hex[:6]
        workers = {"cpu": Worker(f"cpu-{tag}", "dagster", _machine(env, tmp_path / "cpu-node"), tmp_path / "cpu.log",
                                 concurrency=2),
                   "gpu": Worker(f"gpu-{tag}", "gpu", _machine(env, tmp_path / "gpu-node"), tmp_path / "gpu.log")}
        if distill:
            workers["serve"] = Worker(f"serve-{tag}", "deploy", _machine(env, tmp_path / "serve-node"),
                                      tmp_path / "serve.log")
        try:
            for worker in workers.values():
                worker.launch()
            for worker in workers.values():
                worker.wait_ready()
            yield _machine(env, tmp_path / "launcher"), workers, database
        finally:
            for worker in workers.values():
                worker.stop()


def _machine(env: dict, root) -> dict:
    """`env` for a machine whose storage roots are its own."""
    return {**env, **{f"NEXA_{tier.upper()}": str(root / tier) for tier in ("scratch", "durable", "shared")}}


def _layout(env: dict) -> Layout:
    return Layout(*(Path(env[f"NEXA_{tier.upper()}"]).resolve() for tier in ("scratch", "durable", "shared")))


def _step_workers(instance, run_id: str) -> dict[str, str]:
    """Which worker ran each step: dagster-celery's "Executing steps ... in celery worker" event names it."""
    import dagster as dg

    events = (r.event_log_entry for r in
              instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records)
    return {e.step_key: meta["Celery worker"].value for e in events
            if "Celery worker" in (meta := e.dagster_event.event_specific_data.metadata)}


def _assert_routed(ran_on: dict[str, str], workers: dict) -> None:
    assert {step for step, node in ran_on.items() if node == workers["gpu"].node} == GPU_STEPS, ran_on
    assert {node for step, node in ran_on.items() if step not in GPU_STEPS} == {workers["cpu"].node}, ran_on


def _training_started(layout: Layout) -> str | None:
    """The run id once the gpu worker is training (its run.json says `running`), else None."""
    for record in layout.runs_dir.glob("*/run.json") if layout.runs_dir.is_dir() else ():
        if json.loads(record.read_text()).get("status") == "running":
            return record.parent.name
    return None


def test_gpu_steps_run_on_the_gpu_worker_and_a_killed_worker_fails_the_run_cleanly(fleet, s3):
    import dagster as dg
    import psycopg2

    env, workers, database = fleet
    gpu, cpu = _layout(workers["gpu"].env), _layout(workers["cpu"].env)
    proc = execute_job("training_pipeline", env, env["DAGSTER_HOME"])
    deadline = time.monotonic() + 300
    while (run_id := _training_started(gpu)) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.log.read_text()[-4000:]
        time.sleep(0.2)
    workers["gpu"].kill()  # the whole GPU node gone, mid-training
    out = finish(proc, timeout=180)  # found within 3 pings 5 s apart; stock dagster-celery would wait for ever
    assert "RUN_FAILURE" in out, out[-4000:]

    with production_instance(env) as instance:
        [failed] = instance.get_runs()
        assert failed.status == dg.DagsterRunStatus.FAILURE
        [failure] = [r.event_log_entry for r in instance.get_records_for_run(
            failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records]
        reason = failure.dagster_event.step_failure_data.error.message
        assert failure.step_key == "trained_model", failure.step_key
        assert reason.startswith(f"step trained_model (queue 'gpu') did not finish: celery worker {workers['gpu'].node} "
                                  "stopped answering while it ran the step"), reason
        _assert_routed(_step_workers(instance, failed.run_id), workers)
        for name in RELEASE:
            assert instance.get_latest_materialization_event(dg.AssetKey(name)) is None, name
        # The pool slot the dead step held is free again (else the re-run would wait for it for ever).
        assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
    # Nothing half-published: no manifest, package or deployment, nothing of the run's final model on S3.
    assert not list(cpu.manifests_dir.glob("*.json")) and not cpu.packages_dir.exists()
    assert not (cpu.deploy_dir / "current_model").exists() and not cpu.runs_dir.exists()
    keys = [o["Key"] for o in admin_client(s3).list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert not [k for k in keys if f"/runs/{run_id}/final/" in k], keys
    assert json.loads((gpu.run_dir(run_id) / "run.json").read_text())["status"] == "running"  # interrupted

    workers["gpu"].launch().wait_ready()  # the node is back
    out = finish(execute_job("training_pipeline", env, env["DAGSTER_HOME"]))
    assert "RUN_SUCCESS" in out, out[-4000:]
    with production_instance(env) as instance:
        rerun = instance.get_runs(limit=1)[0]
        assert rerun.status == dg.DagsterRunStatus.SUCCESS
        _assert_routed(ran_on := _step_workers(instance, rerun.run_id), workers)
        assert set(RELEASE) <= set(ran_on)
        event = instance.get_latest_materialization_event(dg.AssetKey("trained_model"))
        assert event.asset_materialization.metadata["run_id"].value == run_id  # the interrupted run, resumed
    # The release steps ran on the cpu worker, on the model and run folder the gpu worker handed over through S3.
    assert json.loads((gpu.run_dir(run_id) / "run.json").read_text())["status"] == "complete"
    assert json.loads((cpu.run_dir(run_id) / "run.json").read_text())["status"] == "complete"
    assert (cpu.run_dir(run_id) / "final" / "model.safetensors").read_bytes() == \
        (gpu.run_dir(run_id) / "final" / "model.safetensors").read_bytes()
    assert cpu.manifest_path(run_id).is_file() and cpu.package_path(run_id).is_file()
    assert (cpu.deploy_dir / "current_model").exists()
    assert not gpu.manifests_dir.exists() and not gpu.packages_dir.exists()  # the gpu worker only trained
    launcher = _layout(env)
    assert not [p for p in (launcher.durable, launcher.shared) if p.exists() and any(p.iterdir())]

    # Runs and events are PostgreSQL rows; step outputs and step logs are S3 objects.
    with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs ORDER BY create_timestamp")
        assert cur.fetchall() == [(failed.run_id, "FAILURE"), (rerun.run_id, "SUCCESS")]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'STEP_SUCCESS'",
                    (rerun.run_id,))
        assert cur.fetchone()[0] == len(ran_on)
    conn.close()
    client = admin_client(s3)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(k.endswith("/dagster-io/trained_model") for k in keys), keys
    assert any(k.endswith(f"/dagster-io/files/durable/runs/{run_id}/final/model.safetensors") for k in keys), keys
    logs = [client.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode() for k in keys if "/compute-logs/" in k]
    assert any('Started execution of step "trained_model"' in log for log in logs), keys  # the gpu worker's step log


@pytest.mark.parametrize("fleet", ["distill"], indirect=True)
def test_the_distillation_pipeline_hands_teacher_outputs_and_pairs_between_workers(fleet):
    """The main job, its GPU steps (teacher, teacher outputs, student) on the gpu worker, the steps that read or
    write the deployment register (student_evaluation re-scores the champion; student_promotion deploys) on the
    serve worker, the rest on the cpu worker: each step finds what the step before it wrote on another machine."""
    import dagster as dg

    env, workers, _ = fleet
    partition = "v1"
    add = subprocess.run([str(BIN / "python"), "-m", "nexa_dagster.partitions", "add", partition], env=env,
                         cwd=env["DAGSTER_HOME"], capture_output=True, text=True)
    assert add.returncode == 0, add.stderr
    out = finish(execute_job("distillation_pipeline", env, env["DAGSTER_HOME"],
                             "--tags", json.dumps({"dagster/partition": partition})))
    assert "RUN_SUCCESS" in out, out[-6000:]
    gpu, cpu = _layout(workers["gpu"].env), _layout(workers["cpu"].env)
    with production_instance(env) as instance:
        [run] = instance.get_runs()
        ran_on = _step_workers(instance, run.run_id)
        on = {name: {s for s, node in ran_on.items() if node == worker.node} for name, worker in workers.items()}
        assert on["gpu"] == {"teacher_model", "teacher_outputs", "student_model"}, ran_on
        assert on["serve"] == {"student_evaluation", "student_promotion"}, ran_on
        student = instance.get_latest_materialization_event(dg.AssetKey("student_model"))
        student_run = student.asset_materialization.metadata["run_id"].value
        promoted = instance.get_latest_materialization_event(dg.AssetKey("student_promotion"))
        assert promoted.asset_materialization.metadata["promoted"].value is True
    serve = _layout(workers["serve"].env)
    assert (gpu.run_dir(student_run) / "final").is_dir() and not gpu.manifests_dir.exists()
    assert cpu.manifest_path(student_run).is_file()
    # One deployment register, on the serve node: it deployed the student it received through S3.
    assert (serve.deploy_dir / "current_model" / "config.json").is_file()
    assert not (cpu.deploy_dir / "current_model").exists() and not (gpu.deploy_dir / "current_model").exists()
