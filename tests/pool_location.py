"""A tiny code location for the pool test: one asset in pool `gpu` that records when it ran."""

import os
import time

import dagster as dg


@dg.asset(pool="gpu")
def gpu_step() -> None:
    start = time.time()
    time.sleep(float(os.environ.get("NEXA_TEST_STEP_SECONDS", "3")))
    with open(os.environ["NEXA_TEST_TIMES"], "a") as fh:
        fh.write(f"{os.getpid()} {start} {time.time()}\n")


defs = dg.Definitions(assets=[gpu_step], jobs=[dg.define_asset_job("gpu_job", selection=[gpu_step])],
                      executor=dg.in_process_executor)
