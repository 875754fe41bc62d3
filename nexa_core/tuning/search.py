"""The search loop of `nexa tune`: check everything, open the study, then ask, train and tell until the study
holds `max_trials` trials (counting earlier runs of it and other processes' trials), and write best.yaml.

Asking happens under the study's lock file, so processes on one host never overshoot `max_trials`; processes on
several hosts (PostgreSQL) can race for the last slot, and the surplus trial is told FAIL at once (`steps.ask`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig, validate_config
from nexa_core.tuning import report, steps
from nexa_core.tuning import study as studies
from nexa_core.tuning.handoff import TrialOutcome
from nexa_core.tuning.recipe import record_start
from nexa_core.tuning.space import check_space, search_space


@dataclass
class TuneResult:
    study: str
    metric: str
    storage: str  # the URL without its password
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_path: Path | None
    failed_dead: list[int]


def check_tune(cfg: NexaConfig, raw: dict[str, Any]) -> None:
    """Everything refusable before a file is written or a database opened."""
    from nexa_core.training.preflight import check_training

    check_space(raw, search_space(cfg))
    if cfg.training.processes() > 1:
        raise NexaError(f"training.distributed.world_size={cfg.training.processes()}: a trial trains in "
                        "one process (run several `nexa tune` processes for parallel trials); set it to 1")
    studies.study_name(cfg)
    check_training(cfg)


def tune(raw: dict[str, Any], progress: Callable[[str], None] = print) -> TuneResult:
    """Run the study of the recipe `raw` (overrides applied) to its `tune.max_trials`."""
    from nexa_core.data.prepare import dataset_for
    from nexa_core.storage.settings import StorageSettings, check_reachable

    cfg = validate_config(raw)
    layout = Layout.from_storage(cfg.storage)
    check_tune(cfg, raw)
    storage = StorageSettings.from_env()
    check_reachable(storage)
    opened = steps.open_study(cfg, layout)
    for number in opened.failed_dead:
        progress(f"trial {number}: its process died; marked FAIL")
    dataset = dataset_for(cfg, layout)
    record_start(opened.study, cfg, dataset.version)
    space, total, name = search_space(cfg), cfg.tune.max_trials, opened.name
    goal = "minimising" if cfg.tune.metric == "loss" else "maximising"
    progress(f"study {name} ({studies.safe_url(opened.url)}): {len(opened.study.trials)} of {total} trials exist; "
             f"{cfg.tune.sampler} sampler, pruner {cfg.tune.pruner}, {goal} validation {cfg.tune.metric}")
    while (asked := steps.ask(opened, space, total)) is not None:
        trial, params = asked
        progress(f"trial {trial.number}: {_params(params)}")
        outcome = steps.run_and_tell(opened, trial, params, raw, dataset, layout, storage)
        progress(_line(outcome, cfg.tune.metric, total))
    rows = report.leaderboard(opened.study)
    best = report.best_trial(opened.study)
    best_path = report.write_best(raw, best, name, cfg.tune.metric, opened.folder / "best.yaml") if best else None
    best_row = next((r for r in rows if best and r["number"] == best.number), None)
    return TuneResult(name, cfg.tune.metric, studies.safe_url(opened.url), rows, best_row, best_path,
                      opened.failed_dead)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _line(o: TrialOutcome, metric: str, total: int) -> str:
    how = f"pruned at step {o.pruned_at}" if o.state == "pruned" else o.state
    return (f"trial {o.number} ({o.number + 1}/{total}) {how}: validation {metric} {o.value:.4f}, {o.steps} steps, "
            f"{o.seconds:.1f} s, run {o.run_id}")
