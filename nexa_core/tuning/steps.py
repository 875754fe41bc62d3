"""What every trial goes through, whoever drives the study (`nexa tune`'s loop or an orchestrator's slot): the
study database opened, the study opened under its lock (dead trials failed, the recipe recorded), the next trial
asked, and its run trained and told to the study."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.locks import FileLock
from nexa_core.config import NexaConfig, TuneConfig, validate_config
from nexa_core.training.gpus import gpu_lease
from nexa_core.tuning import study as studies
from nexa_core.tuning.handoff import TrialOutcome
from nexa_core.tuning.heartbeat import beating
from nexa_core.tuning.space import suggest
from nexa_core.tuning.trial import run_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say what its INFO lines would


@dataclass
class OpenStudy:
    name: str
    url: str  # with its password, for opening; `safe_url` for anything shown or stored
    study: optuna.Study
    rdb: optuna.storages.RDBStorage  # heartbeats go through it
    lock: FileLock  # asking for a trial happens under it (one host never overshoots a study's size)
    folder: Path  # best.yaml and the lock
    failed_dead: list[int]  # trials of dead processes marked FAIL on opening


def open_study(cfg: NexaConfig, layout: Layout, seed: int | None = None, create: bool = True) -> OpenStudy:
    """The study of the recipe (created unless `create` is False), its dead trials failed."""
    name, url = studies.study_name(cfg), studies.storage_url(cfg, layout)
    rdb = open_storage(url, cfg.tune)
    if not create and name not in {s.study_name for s in optuna.get_all_study_summaries(rdb)}:
        raise NexaError(f"tune.study {name}: no such study in {studies.safe_url(url)}; start it first (the hpo_study "
                        "asset, or `nexa tune`)")
    seed = seed if seed is not None else (cfg.tune.seed if cfg.tune.seed is not None else
                                          cfg.training.distributed.seed)
    folder = studies.study_dir(layout, name)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / "study.lock")
    with lock:
        study = studies.open_study(cfg, name, rdb, seed)
        failed_dead = studies.fail_dead_trials(study, layout, cfg.tune.stale_after_s)
    return OpenStudy(name, url, study, rdb, lock, folder, failed_dead)


def open_storage(url: str, tune: TuneConfig):
    if not url.startswith("sqlite:///"):
        return studies.open_storage(url, tune)  # nothing written if the server cannot be reached
    db = Path(url.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(db.parent / f".{db.name}.lock"):  # processes creating the tables at once would race
        return studies.open_storage(url, tune)


def ask(opened: OpenStudy, space, total: int | None, tags: dict[str, Any] | None = None):
    """The next trial and its point, or None when the study already holds `total` trials (None: no cap, the
    orchestrator's slots are the study's size)."""
    study = opened.study
    with opened.lock:
        if total is not None and len(study.get_trials(deepcopy=False)) >= total:
            return None
        trial = study.ask()
        for key, value in {"pid": os.getpid(), "host": socket.gethostname(), **(tags or {})}.items():
            trial.set_user_attr(key, value)
        if total is not None and trial.number >= total:  # another host took the last slot between count and ask
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


def run_and_tell(opened: OpenStudy, trial, params, raw, dataset, layout, storage) -> TrialOutcome:
    """Train the asked trial's run and tell the study how it ended; an error or Ctrl-C fails the trial."""
    study = opened.study
    try:
        # Other processes fail the trial once its beats stop for tune.stale_after_s (study.fail_dead_trials).
        # On a multi-GPU node, trials running at once (pool slots, several `nexa tune`) each take their own GPU.
        with beating(opened.rdb, trial), gpu_lease(trial_config(raw, params), layout.scratch / "gpu-leases") as cfg:
            outcome = run_trial(cfg, trial, params, opened.name, dataset, layout, storage)
        if outcome.value is None:
            raise NexaError(f"trial {trial.number} trained {outcome.steps} steps without a validation evaluation; set "
                            "training.checkpoint.every_steps below the steps a trial trains")
    except BaseException:
        _tell(study, trial, None, state=TrialState.FAIL)  # the trial is over; the study goes on later
        raise
    try:
        trial.set_user_attr("steps", outcome.steps)
        trial.set_user_attr("test", outcome.test)
        if outcome.state == "pruned":
            trial.set_user_attr("pruned_at_step", outcome.pruned_at)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # failed meanwhile by another process: _tell says so
    if outcome.state == "pruned":
        _tell(study, trial, outcome.run_id, state=TrialState.PRUNED)
    else:
        _tell(study, trial, outcome.run_id, values=outcome.value)
    return outcome


def _tell(study: optuna.Study, trial, run_id: str | None, **how) -> None:
    """Tell the study; a trial another process already marked FAIL (its beats stopped for tune.stale_after_s:
    database unreachable, machine suspended) cannot be told again, and says so in one line."""
    try:
        study.tell(trial, **how)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as err:
        if how.get("state") == TrialState.FAIL:
            return  # already over; the error that ended the trial is the one worth raising
        raise NexaError(f"trial {trial.number}: the study already marked it failed (no heartbeat for over "
                        f"tune.stale_after_s; {err}); its run {run_id} is recorded but does not count in the study; "
                        "raise tune.stale_after_s if the study database is often unreachable that long") from None
