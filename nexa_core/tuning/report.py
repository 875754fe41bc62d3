"""The study's leaderboard and its best trial as a ready-to-use recipe (`best.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from nexa_core.common.atomic import atomic_write_text
from nexa_core.tuning.space import apply_params


def leaderboard(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: best first among the finished ones (complete, then pruned), then the rest by number."""
    rows = [{"number": t.number, "state": t.state.name.lower(), "params": dict(t.params), "value": t.value,
             "run_id": t.user_attrs.get("run_id"), "pruned_at_step": t.user_attrs.get("pruned_at_step")}
            for t in study.get_trials(deepcopy=False)]
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    rank = {"complete": 0, "pruned": 1}
    return sorted(rows, key=lambda r: (rank.get(r["state"], 2), sign * r["value"] if r["value"] is not None and
                                       r["state"] in rank else 0, r["number"]))


def leaderboard_text(rows: list[dict[str, Any]], metric: str) -> str:
    header = f"{'trial':>5}  {'state':<9} {metric:>9}  {'run':<28} params"
    lines = [header]
    for r in rows:
        value = f"{r['value']:.4f}" if r["value"] is not None else "-"
        params = " ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items())
        lines.append(f"{r['number']:>5}  {r['state']:<9} {value:>9}  {r['run_id'] or '-':<28} {params}")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial (a pruned one never is: it did not finish its training)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def write_best(raw: dict[str, Any], trial: optuna.trial.FrozenTrial, study: str, metric: str, path: Path) -> Path:
    """The recipe with the best trial's values, without its `tune` section: `nexa train --config best.yaml`."""
    metric_key = {"training.best_metric": metric}  # as the trial trained (steps.trial_config)
    recipe = {k: v for k, v in apply_params(raw, {**trial.params, **metric_key}).items() if k != "tune"}
    header = (f"# Best trial {trial.number} of study {study}: validation {metric} {trial.value:.4f}, run "
              f"{trial.user_attrs.get('run_id')}.\n# Run: nexa train --config {path}\n")
    atomic_write_text(path, header + yaml.safe_dump(recipe, sort_keys=False))
    return path
