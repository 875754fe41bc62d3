"""Wall time of the same tiny job in-process, multiprocess and on Celery workers, and each executor's per-step
overhead (target: Celery adds at most 2 s per step over in-process).

The job is the project's `training_pipeline` (10 steps: source, data, its check, training, evaluation, its check,
manifest, package, promotion, mirror) on a tiny recipe (the 2-layer BERT and review CSV of tests/tiny.py, 3 epochs),
launched by `dagster job execute` as CI does, on the production instance: deploy/dagster.yaml over a fresh
PostgreSQL database (this machine's, 127.0.0.1:5432) with step logs on S3 (a loopback moto_server). Only
NEXA_EXECUTOR changes between runs. For Celery, two workers (queue `dagster` with 2 processes, queue `gpu` with 1)
on this machine's RabbitMQ, in a vhost of their own; step outputs go through S3 (moto).

Per run: the command's wall time; the run's own duration (RUN_START to RUN_SUCCESS in the event log); the steps'
compute (STEP_START to STEP_SUCCESS, summed); overhead per step = (run duration - step compute) / steps: what the
executor spends around the steps (processes, submission, polling, hand-offs, resource set-up). Every executor is
warmed once (untimed: workers are long-lived in production, and the first run pays cold imports), then rounds
alternate the order; medians are printed. Each run writes to storage roots of its own (run config), so no run
resumes or competes with another.
Run:  .venv/bin/python bench/executor_overhead.py [--rounds 3] [--executors in_process,multiprocess,celery]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

import yaml  # noqa: E402

from tests.postgres_helpers import fresh_database  # noqa: E402
from tests.production_helpers import (  # noqa: E402
    BUCKET,
    Worker,
    execute_job,
    finish,
    production_env,
    production_home,
    production_instance,
    rabbit_vhost,
)
from tests.test_storage_s3 import _start_moto, admin_client, stop_group  # noqa: E402
from tests.tiny import make_tiny_bert, write_reviews_csv  # noqa: E402

EXECUTORS = ("in_process", "multiprocess", "celery")


def recipe(root: Path) -> dict:
    from tests.conftest import tiny_recipe

    return tiny_recipe(make_tiny_bert(root / "model"), write_reviews_csv(root / "data" / "reviews.csv"), root / "base")


def run_once(executor: str, env: dict, home: Path, root: Path) -> dict:
    """One `dagster job execute` of training_pipeline with `executor`; its timings from the command and the event
    log."""
    import dagster as dg

    storage = root / f"{executor}-{uuid.uuid4().hex[:6]}"
    run_config = storage / "run.yaml"
    storage.mkdir(parents=True)
    run_config.write_text(yaml.safe_dump({"resources": {"nexa": {"config": {"storage": {
        tier: str(storage / tier) for tier in ("scratch", "durable", "shared")}}}}}))
    start = time.perf_counter()
    out = finish(execute_job("training_pipeline", {**env, "NEXA_EXECUTOR": executor}, home, "-c", str(run_config)))
    wall = time.perf_counter() - start
    if "RUN_SUCCESS" not in out:
        sys.exit(f"{executor}: the run failed:\n{out[-3000:]}")
    with production_instance(env) as instance:
        run = instance.get_runs(limit=1)[0]
        records = [r.event_log_entry for r in instance.get_records_for_run(run.run_id).records]
    at = {(e.step_key, e.dagster_event_type): e.timestamp for e in records if e.dagster_event_type}
    starts = {step: t for (step, kind), t in at.items() if kind == dg.DagsterEventType.STEP_START}
    compute = sum(at[(step, dg.DagsterEventType.STEP_SUCCESS)] - t for step, t in starts.items())
    duration = at[(None, dg.DagsterEventType.RUN_SUCCESS)] - at[(None, dg.DagsterEventType.RUN_START)]
    return {"wall": wall, "run": duration, "compute": compute, "steps": len(starts),
            "per_step": (duration - compute) / len(starts)}


def report(results: dict[str, list[dict]]) -> None:
    med = {ex: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for ex, rows in results.items()}
    print(f"\n{'executor':<14}{'wall s':>9}{'run s':>9}{'steps s':>9}{'steps':>7}{'overhead/step s':>17}"
          f"{'vs in_process /step':>21}")
    base = med.get("in_process")
    for ex, m in med.items():
        added = f"{m['per_step'] - base['per_step']:+.2f}" if base and ex != "in_process" else "-"
        print(f"{ex:<14}{m['wall']:>9.1f}{m['run']:>9.1f}{m['compute']:>9.1f}{m['steps']:>7.0f}{m['per_step']:>17.2f}"
              f"{added:>21}")
    if base and "celery" in med:
        wall_added = (med["celery"]["wall"] - base["wall"]) / base["steps"]
        verdict = "met" if med["celery"]["per_step"] - base["per_step"] <= 2.0 else "NOT met"
        print(f"\nCelery adds {med['celery']['per_step'] - base['per_step']:.2f} s per step over in-process "
              f"(overhead), {wall_added:.2f} s per step of wall time; target <= 2 s: {verdict}")
    print("rounds:", {ex: [round(r["wall"], 1) for r in rows] for ex, rows in results.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executors", default=",".join(EXECUTORS))
    args = parser.parse_args()
    executors = [e for e in args.executors.split(",") if e]
    if unknown := set(executors) - set(EXECUTORS):
        sys.exit(f"--executors: unknown {sorted(unknown)}; choose from {', '.join(EXECUTORS)}")

    with tempfile.TemporaryDirectory(prefix="nexa-executor-bench-") as tmp:
        root = Path(tmp)
        moto, endpoint = _start_moto(root / "moto_server.log")
        workers: list[Worker] = []
        try:
            admin_client(endpoint).create_bucket(Bucket=BUCKET)
            home = production_home(root / "home")
            cfg = root / "tiny.yaml"
            cfg.write_text(yaml.safe_dump(recipe(root)))
            with fresh_database("nexa_bench") as database, rabbit_vhost() as broker:
                env = {**production_env(home, database, endpoint, "bench"), "NEXA_CONFIG": str(cfg),
                       "NEXA_CELERY_BROKER": broker}
                if "celery" in executors:
                    worker_env = {**env, "NEXA_EXECUTOR": "celery"}
                    workers = [Worker("bench-cpu", "dagster", worker_env, root / "cpu.log", concurrency=2),
                               Worker("bench-gpu", "gpu", worker_env, root / "gpu.log")]
                    for worker in workers:
                        worker.launch()
                    for worker in workers:
                        worker.wait_ready()
                for executor in executors:  # warm-up: cold imports, worker processes' first load of the code
                    print(f"warm-up {executor}: {run_once(executor, env, home, root)['wall']:.1f} s", flush=True)
                results: dict[str, list[dict]] = {e: [] for e in executors}
                for i in range(args.rounds):
                    for executor in executors if i % 2 == 0 else executors[::-1]:
                        results[executor].append(r := run_once(executor, env, home, root))
                        print(f"round {i + 1} {executor}: wall {r['wall']:.1f} s, run {r['run']:.1f} s, steps "
                              f"{r['compute']:.1f} s, overhead {r['per_step']:.2f} s/step", flush=True)
                for worker in workers:
                    worker.stop()
        finally:
            for worker in workers:
                worker.stop()
            stop_group(moto)
    report(results)


if __name__ == "__main__":
    main()
