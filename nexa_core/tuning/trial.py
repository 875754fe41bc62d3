"""One trial as an ordinary run: the recipe with the trial's values, a claimed run id (`<name>-trial_<time>`),
training with a pruning reporter, evaluation on the test split and the manifest, so `nexa analyze` lists it.

The run record (run.json) carries `tune: {study, trial_number, params, state, value}`. A pruned trial stopped
training early but ended cleanly: its run is `complete` (final/ holds its best checkpoint so far), evaluated and
manifested like any run, and `tune.state` is `pruned` with the step it was stopped at. The trial's value is its
best validation metric, the one the trainer picked its checkpoint by; the test split is never tuned on."""

from __future__ import annotations

import time
from typing import Any

import optuna
from transformers import TrainerCallback

from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig
from nexa_core.training.record import update_record
from nexa_core.tuning.handoff import TrialOutcome


class PruningReporter(TrainerCallback):
    """Reports the validation metric at each evaluation; stops training when the pruner says so."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None:
            return
        try:
            self.trial.report(float(value), state.global_step)
            prune = self.trial.should_prune()
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another process failed this trial (its heartbeats stopped for tune.stale_after_s): training on is
            # wasted; the run ends cleanly and telling the study says what happened (steps._tell).
            control.should_training_stop = True
            return
        if prune:
            self.pruned_at = state.global_step
            control.should_training_stop = True



def run_trial(cfg: NexaConfig, trial, params: dict[str, Any], study: str, dataset, layout: Layout,
              storage) -> TrialOutcome:
    """Train, evaluate and manifest one trial's run; the caller tells the study the outcome."""
    from nexa_core.evaluation.evaluate import evaluate_run
    from nexa_core.release.steps import mirror_run, record_manifest
    from nexa_core.telemetry import measure
    from nexa_core.tracking.study import nested_in_study
    from nexa_core.training.steps import claim_run, train_run

    started = time.time()
    metric = cfg.tune.metric
    reporter = PruningReporter(trial, metric)
    tune = {"study": study, "trial_number": trial.number, "params": params, "state": "running"}
    with nested_in_study(cfg, study), claim_run(cfg, dataset.version, layout, name=f"{cfg.name[:58]}-trial") as claim:
        run_id = claim.run_id
        trial.set_user_attr("run_id", run_id)
        update_record(claim.run_dir, tune=tune)
        with measure(cfg.telemetry, claim.run_dir / "telemetry", "train"):
            result = train_run(cfg, dataset.path, run_id, layout, storage=storage, callbacks=[reporter])
    report = evaluate_run(cfg, run_id, dataset.path, layout)
    record_manifest(cfg, run_id, layout, dataset, report, result.train_metrics)
    mirror_run(layout, run_id, storage)
    value = result.best_eval.get(metric)
    state = "pruned" if reporter.pruned_at is not None else "complete"
    update_record(claim.run_dir, tune={**tune, "state": state, "value": value, "pruned_at_step": reporter.pruned_at})
    return TrialOutcome(trial.number, params, state, value, run_id, reporter.pruned_at, time.time() - started,
                        result.global_step, {k: report[k] for k in ("accuracy", "macro_f1", "loss")})
