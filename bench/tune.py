"""Tuning with a pruner vs without on the demo data, and the tuned best vs the default recipe on the test split.

Two studies of `nexa_core.tuning.search.tune` (the code `nexa tune` runs) on configs/default.yaml's data and model,
cut to a CPU budget (`--max-samples` training rows, `--steps` optimizer steps of `--batch-size`, a validation every
`--every` steps), the same `--trials` trials and seed, the default space (learning rate a decade either side of the
recipe's, log; dropout 0.05-0.2) and the random sampler: trial N draws the same point in both studies, whatever the
pruner did to earlier trials. One study runs without a pruner, the other with `--pruner` (`median` waits for
`--startup` finished trials). Both are deterministic on CPU, so a trial both studies finish has the same value.
`--every` changes the training itself (each validation's DataLoader draws from the torch RNG that dropout uses), so
compare figures taken at one interval.

Printed per study: optimizer steps spent (the sum of the trials' `steps`), the best validation accuracy and its
trial, wall time; then steps pruned / full and the best's difference in accuracy points against the target (at most
60% of the steps for a best within 0.5 points). Then the default recipe, trained once as `nexa train` would on the
same budget (its lr and dropout, checkpoint by `training.best_metric`), against the unpruned study's best trial, both
evaluated on the same test split. Each study and the default run use their own temporary storage roots (study
database under the durable root); MLflow, TensorBoard and telemetry are off.
Run:  .venv/bin/python bench/tune.py [--trials 8] [--steps 60] [--every 10] [--batch-size 16] [--max-samples 1000]
      [--eval-samples 200] [--pruner median|successive_halving] [--startup 2] [--warmup 0] [--seed 42]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo model is bundled: nothing to download

from nexa_core.config import read_recipe  # noqa: E402

TARGET_STEPS, TARGET_POINTS = 0.60, 0.5


def recipe(opts, root: Path, pruner: str) -> dict:
    """configs/default.yaml cut to the bench's budget, storage under `root`, tracking and telemetry off."""
    raw = read_recipe(ROOT / "configs" / "default.yaml")
    raw["data"].update(max_samples=opts.max_samples, eval_samples=opts.eval_samples)
    training = raw["training"]
    training.update(max_steps=opts.steps, batch_size=opts.batch_size, logging_steps=opts.every)
    training["checkpoint"] = {"every_steps": opts.every, "keep": 1}
    training["distributed"] = {"seed": opts.seed}
    raw["tracking"] = {"mlflow": {"enabled": False}, "tensorboard": {"enabled": False}}
    raw["telemetry"] = {"enabled": False}
    raw["storage"] = {k: str(root / k) for k in ("scratch", "durable", "shared")}
    raw["tune"] = {"study": f"bench-{pruner}", "max_trials": opts.trials, "seed": opts.seed, "sampler": "random",
                   "pruner": pruner, "pruner_startup_trials": opts.startup,
                   "pruner_warmup_steps": opts.warmup, "metric": "accuracy"}
    return raw


def run_study(opts, root: Path, pruner: str) -> dict:
    """Tune; return the trials (number, state, params, value, steps, test) read back from the study database."""
    import optuna

    from nexa_core.tuning.search import tune

    out = sys.stdout
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the Trainer's log dicts
        result = tune(recipe(opts, root, pruner), progress=lambda line: print(f"[{pruner}] {line}", file=out,
                                                                               flush=True))
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name=result.study, storage=f"sqlite:///{root / 'durable/tuning/studies.db'}")
    # A pruned trial's value in Optuna is its last report; its best one is what its run kept (as a complete trial's).
    trials = {t.number: {"state": t.state.name.lower(), "params": t.params,
                         "value": max(t.intermediate_values.values(), default=t.value),
                         "steps": t.user_attrs["steps"], "test": t.user_attrs["test"]} for t in study.trials}
    best = result.best["number"] if result.best else None
    return {"pruner": pruner, "trials": trials, "best": best, "seconds": seconds,
            "steps": sum(t["steps"] for t in trials.values())}


def train_default(opts, root: Path) -> dict:
    """The recipe as `nexa train` runs it (cli/main.py cmd_train) on the same budget: no tuning, one run."""
    from nexa_core.common.layout import Layout
    from nexa_core.config import validate_config
    from nexa_core.data.prepare import dataset_for
    from nexa_core.evaluation.evaluate import evaluate_run
    from nexa_core.training.steps import claim_run, train_run

    raw = recipe(opts, root, "none")
    del raw["tune"]
    cfg = validate_config(raw)
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    print(f"[default] training the recipe once (lr {cfg.training.optimizer.lr:.4g}, dropout "
          f"{cfg.model.dropout or 'the model default'})", flush=True)
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
            claim_run(cfg, dataset.version, layout) as claim:
        result = train_run(cfg, dataset.path, claim.run_id, layout)
    report = evaluate_run(cfg, claim.run_id, dataset.path, layout)
    return {"lr": cfg.training.optimizer.lr, "dropout": cfg.model.dropout, "steps": result.global_step,
            "validation": result.best_eval.get("accuracy"), "test": report["accuracy"],
            "seconds": time.perf_counter() - started, "dataset": dataset.version, "test_rows": dataset.counts["test"]}


def _point(params: dict) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" for k, v in params.items())


def report(full: dict, pruned: dict, default: dict | None) -> None:
    print(f"\n{'trial':>5}  {'point':<28}{'full: state':>14}{'val acc':>9}{'steps':>7}"
          f"{'pruned: state':>16}{'val acc':>9}{'steps':>7}")
    for n, f in sorted(full["trials"].items()):
        p = pruned["trials"].get(n, {"state": "-", "value": None, "steps": 0, "params": None})
        fv, pv = (f"{v:.4f}" if v is not None else "-" for v in (f["value"], p["value"]))
        print(f"{n:>5}  {_point(f['params']):<28}{f['state']:>14}{fv:>9}{f['steps']:>7}{p['state']:>16}{pv:>9}"
              f"{p['steps']:>7}")
    same = all(pruned["trials"].get(n, {}).get("params") == t["params"] for n, t in full["trials"].items())
    print(f"same point for every trial number in both studies: {'yes' if same else 'NO'}")
    both = [n for n, t in full["trials"].items() if t["state"] == pruned["trials"][n]["state"] == "complete"]
    equal = sum(full["trials"][n]["value"] == pruned["trials"][n]["value"] for n in both)
    print(f"trials complete in both studies with the same validation accuracy: {equal} of {len(both)}\n")
    for s in (full, pruned):
        best = s["trials"][s["best"]]
        print(f"{s['pruner']:<20} steps {s['steps']:>5}  best validation accuracy {best['value']:.4f} (trial "
              f"{s['best']})  {sum(t['state'] == 'pruned' for t in s['trials'].values())} pruned  "
              f"wall {s['seconds'] / 60:.1f} min")
    ratio = pruned["steps"] / full["steps"]
    points = (full["trials"][full["best"]]["value"] - pruned["trials"][pruned["best"]]["value"]) * 100
    ok = ratio <= TARGET_STEPS and points <= TARGET_POINTS
    print(f"steps {pruned['pruner']} / none = {ratio:.3f} (target <= {TARGET_STEPS:.2f}); best accuracy none - "
          f"{pruned['pruner']} = {points:+.2f} points (target <= {TARGET_POINTS}): {'PASS' if ok else 'MISS'}")
    if default is None:
        return
    tuned = full["trials"][full["best"]]
    print(f"\ntest split ({default['test_rows']} rows, dataset {default['dataset']}):")
    print(f"default recipe  lr={default['lr']:.4g} dropout={default['dropout'] or 'model (0.1)'}: test accuracy "
          f"{default['test']:.4f} (validation {default['validation']:.4f}, {default['steps']} steps, "
          f"{default['seconds']:.0f} s)")
    print(f"tuned best      trial {full['best']} {_point(tuned['params'])}: test accuracy {tuned['test']['accuracy']:.4f}"
          f" (validation {tuned['value']:.4f})")
    print(f"tuned - default = {(tuned['test']['accuracy'] - default['test']) * 100:+.2f} accuracy points")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The defaults are the budget of docs/benchmarks.md: two studies and the default run in about 30 min on the
    # shared 2-core machine (MiniLM does not leave chance accuracy before step ~30 here).
    parser.add_argument("--trials", type=int, default=8, help="trials per study")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of a trial that is not pruned")
    parser.add_argument("--every", type=int, default=10, help="steps between validations (pruning decisions)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-samples", type=int, default=1000, help="training rows (data.max_samples)")
    parser.add_argument("--eval-samples", type=int, default=200, help="validation and test rows each")
    parser.add_argument("--pruner", choices=("median", "successive_halving"), default="median")
    parser.add_argument("--startup", type=int, default=2, help="median: trials finished before any is pruned")
    parser.add_argument("--warmup", type=int, default=0, help="median: steps a trial trains before it can be pruned")
    parser.add_argument("--seed", type=int, default=42, help="split, training and sampler seed of both studies")
    parser.add_argument("--no-default", action="store_true", help="skip the default-recipe run on the test split")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    opts = parse(argv)
    logging.disable(logging.WARNING)  # HF's head re-initialisation warnings are expected in every trial
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    print(f"{opts.trials} trials per study, {opts.steps} steps of batch {opts.batch_size}, validation every "
          f"{opts.every}, {opts.max_samples} training rows, {opts.eval_samples} validation/test rows, seed {opts.seed}, "
          f"pruner {opts.pruner} (startup {opts.startup}, warm-up {opts.warmup} steps); load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="nexa-bench-tune-") as tmp:
        full = run_study(opts, Path(tmp) / "none", "none")
        pruned = run_study(opts, Path(tmp) / opts.pruner, opts.pruner)
        default = None if opts.no_default else train_default(opts, Path(tmp) / "default")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    report(full, pruned, default)


if __name__ == "__main__":
    main()
