"""The search loop of `nexa tune`: check everything, open the study, then ask, train and tell until the study
holds `max_trials` trials (counting earlier runs of it and other processes' trials), and write best.yaml.

Asking happens under the study's lock file, so processes on one host never overshoot `max_trials`; processes on
several hosts (PostgreSQL) can race for the last slot, and the surplus trial is told FAIL at once."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import FileLock
from nexa_core.config import NexaConfig, TuneConfig, validate_config
from nexa_core.tuning import report
from nexa_core.tuning import study as studies
from nexa_core.tuning.heartbeat import beating
from nexa_core.tuning.space import check_space, search_space, suggest
from nexa_core.tuning.trial import TrialOutcome, run_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say what its INFO lines would


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
    if cfg.training.distributed.world_size > 1:
        raise NexaError(f"training.distributed.world_size={cfg.training.distributed.world_size}: a trial trains in "
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
    name, url = studies.study_name(cfg), studies.storage_url(cfg, layout)
    rdb = _open_storage(url, cfg.tune)
    seed = cfg.tune.seed if cfg.tune.seed is not None else cfg.training.distributed.seed
    folder = studies.study_dir(layout, name)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / "study.lock")
    with lock:
        study = studies.open_study(cfg, name, rdb, seed)
        failed_dead = studies.fail_dead_trials(study, layout, cfg.tune.stale_after_s)
    for number in failed_dead:
        progress(f"trial {number}: its process died; marked FAIL")
    dataset = dataset_for(cfg, layout)
    space, total = search_space(cfg), cfg.tune.max_trials
    goal = "minimising" if cfg.tune.metric == "loss" else "maximising"
    progress(f"study {name} ({studies.safe_url(url)}): {len(study.trials)} of {total} trials exist; "
             f"{cfg.tune.sampler} sampler, pruner {cfg.tune.pruner}, {goal} validation {cfg.tune.metric}")
    while (asked := _ask(study, lock, space, total)) is not None:
        trial, params = asked
        progress(f"trial {trial.number}: {_params(params)}")
        with beating(rdb, trial):  # other hosts fail the trial when the beats stop (study.fail_dead_trials)
            outcome = _run(study, trial, params, raw, name, dataset, layout, storage)
        progress(_line(outcome, cfg.tune.metric, total))
    rows = report.leaderboard(study)
    best = report.best_trial(study)
    best_path = report.write_best(raw, best, name, cfg.tune.metric, folder / "best.yaml") if best else None
    best_row = next((r for r in rows if best and r["number"] == best.number), None)
    return TuneResult(name, cfg.tune.metric, studies.safe_url(url), rows, best_row, best_path, failed_dead)


def _open_storage(url: str, tune: TuneConfig):
    if not url.startswith("sqlite:///"):
        return studies.open_storage(url, tune)  # nothing written if the server cannot be reached
    db = Path(url.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(db.parent / f".{db.name}.lock"):  # processes creating the tables at once would race
        return studies.open_storage(url, tune)


def _ask(study: optuna.Study, lock: FileLock, space, total: int):
    """The next trial and its point, or None when the study is full."""
    with lock:
        if len(study.get_trials(deepcopy=False)) >= total:
            return None
        trial = study.ask()
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        if trial.number >= total:  # another host took the last slot between our count and our ask
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            return None
        return trial, suggest(trial, space)  # drawn under the lock: TPE's constant liar sees every running trial


def trial_config(raw: dict[str, Any], params: dict[str, Any]) -> NexaConfig:
    """The trial's recipe: the point's values, and the checkpoint kept by the metric the study optimises (so the
    trial's value, its best validation metric, belongs to the model its run keeps)."""
    from nexa_core.tuning.space import apply_params

    tune = validate_config(raw).tune
    fixed = {"training.best_metric": tune.metric}
    if tune.storage:  # the run's config snapshot is read by others: never with the database password
        fixed["tune.storage"] = studies.safe_url(tune.storage)
    return validate_config(apply_params(raw, {**params, **fixed}))


def _run(study, trial, params, raw, name, dataset, layout, storage) -> TrialOutcome:
    try:
        outcome = run_trial(trial_config(raw, params), trial, params, name, dataset, layout, storage)
        if outcome.value is None:
            raise NexaError(f"trial {trial.number} trained {outcome.steps} steps without a validation evaluation; set "
                            "training.checkpoint.every_steps below the steps a trial trains")
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)  # Ctrl-C or an error: the trial is over, the study goes on later
        raise
    trial.set_user_attr("steps", outcome.steps)
    trial.set_user_attr("test", outcome.test)
    if outcome.state == "pruned":
        trial.set_user_attr("pruned_at_step", outcome.pruned_at)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, outcome.value)
    return outcome


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _line(o: TrialOutcome, metric: str, total: int) -> str:
    how = f"pruned at step {o.pruned_at}" if o.state == "pruned" else o.state
    return (f"trial {o.number} ({o.number + 1}/{total}) {how}: validation {metric} {o.value:.4f}, {o.steps} steps, "
            f"{o.seconds:.1f} s, run {o.run_id}")
