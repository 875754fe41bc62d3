"""Samplers and pruners from the `tune` section.

A sampler seeded once would hand two processes on one study the same sequence of points, so each trial gets its
own sampler seeded with `seed + trial.number`: trial numbers are unique in the study database, which makes the
points distinct across processes and the same whichever process draws a trial. TPE reads the study's history on
every draw, so a fresh instance per trial loses nothing; `constant_liar` makes it avoid trials still running."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna
from optuna.samplers import BaseSampler

from nexa_core.config import TuneConfig


class PerTrialSampler(BaseSampler):
    """Delegates each trial to a sampler built for it by `factory(seed + trial.number)`."""

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int):
        self._factory, self._seed = factory, seed
        self._samplers: dict[int, BaseSampler] = {}

    def _for(self, trial) -> BaseSampler:
        if trial.number not in self._samplers:
            self._samplers[trial.number] = self._factory(self._seed + trial.number)
        return self._samplers[trial.number]

    def infer_relative_search_space(self, study, trial):
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self._for(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)


def make_sampler(tune: TuneConfig, seed: int) -> BaseSampler:
    if tune.sampler == "random":
        return PerTrialSampler(lambda s: optuna.samplers.RandomSampler(seed=s), seed)
    # Random points until a few trials have finished (at most 10, half the study), then TPE.
    startup = max(1, min(10, tune.max_trials // 2))

    def tpe(s: int) -> BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # constant_liar is "experimental"
            return optuna.samplers.TPESampler(seed=s, constant_liar=True, n_startup_trials=startup)

    return PerTrialSampler(tpe, seed)


def make_pruner(tune: TuneConfig) -> optuna.pruners.BasePruner:
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.pruner_startup_trials,
                                           n_warmup_steps=tune.pruner_warmup_steps)
    if tune.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def direction(metric: str) -> str:
    return "minimize" if metric == "loss" else "maximize"
