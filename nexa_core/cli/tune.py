"""`nexa tune`: the runbook's `cli.py tune --config configs/default.yaml --max-trials 5`. A seeded search over the
recipe's `tune.space` (default: learning rate and dropout) whose trials are ordinary runs; ends with the
leaderboard and the best trial's recipe (best.yaml). Run it again with the same study to resume (docs/tuning.md).

    nexa tune --config configs/default.yaml --max-trials 5
    nexa tune --config configs/default.yaml --study rt-lr --override tune.pruner=median --override tune.sampler=tpe
"""

from __future__ import annotations

from nexa_core.common.errors import NexaError
from nexa_core.config import apply_overrides, read_recipe


def cmd_tune(args) -> None:
    from nexa_core.tuning.report import leaderboard_text
    from nexa_core.tuning.search import tune

    if args.max_trials is not None and args.max_trials < 1:
        raise NexaError(f"--max-trials {args.max_trials}: a study needs at least one trial; pass 1 or more")
    raw = apply_overrides(read_recipe(args.config), args.override)
    section = raw.setdefault("tune", {}) if isinstance(raw.get("tune", {}), dict) else {}
    if args.max_trials is not None:
        section["max_trials"] = args.max_trials
    if args.study is not None:
        section["study"] = args.study  # as given: `--study 7` is the name "7", not a YAML number
    result = tune(raw, progress=lambda line: print(line, flush=True))
    metric = result.metric
    print(f"\nstudy {result.study} ({result.storage}): {len(result.rows)} trials")
    print(leaderboard_text(result.rows, metric), end="")
    if result.best_path:
        print(f"best: trial {result.best['number']} (validation {metric} {result.best['value']:.4f}, "
              f"run {result.best['run_id']}); its recipe: {result.best_path}")
    else:
        print("best: none (no trial completed)")


def add_parser(sub, with_config) -> None:
    p = with_config(sub.add_parser("tune", help="hyperparameter search: trials are runs; leaderboard and best.yaml"))
    p.add_argument("--max-trials", type=int, help="trials in the study in total, earlier ones counted "
                                                  "(default: tune.max_trials)")
    p.add_argument("--study", help="the study's name; an existing one is resumed (default: tune.study, else <name>-tune)")
    p.set_defaults(fn=cmd_tune)
