"""A study driven by an orchestrator: started once (`start_study`), then one trial per slot (`run_slot`), and the
best finished trial handed on as a trained model (`best_model`), to the same gates as any other model.

A slot is a named unit of work, `<study>-trial-NNN`, that Dagster makes a partition of `hpo_trials`. A study's
slots are `tune.max_trials` when it is started (raising it and starting again adds slots). Each slot run asks the
study for a new trial, so a slot run again (a retry, a re-materialization) adds a trial rather than repeating
one: every trial stays in the study, and the best complete one is the study's result. A slot finds everything in
the study database (the recipe recorded at the start, `recipe.py`), so any process on any host can run it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig, validate_config
from nexa_core.training.handoff import TrainedModel
from nexa_core.tuning import report, steps
from nexa_core.tuning import study as studies
from nexa_core.tuning.handoff import StudyPlan, TrialOutcome, slot_key, slot_study
from nexa_core.tuning.recipe import record_start, study_recipe


def start_study(raw: dict[str, Any], dataset) -> StudyPlan:
    """Check the tune section, create or open the study, record its recipe and dataset version: its slots."""
    from nexa_core.tuning.search import check_tune
    from nexa_core.tuning.space import search_space

    cfg = validate_config(raw)
    check_tune(cfg, raw)
    opened = steps.open_study(cfg, Layout.from_storage(cfg.storage))
    record_start(opened.study, cfg, dataset.version)
    tune = cfg.tune
    return StudyPlan(opened.name, studies.safe_url(opened.url), tune.metric, tune.sampler, tune.pruner,
                     dataset.version, tuple(p.model_dump() for p in search_space(cfg)),
                     tuple(slot_key(opened.name, i) for i in range(tune.max_trials)))


def study_config(here: NexaConfig, name: str) -> NexaConfig:
    """The study's recorded recipe, with this process's storage, tracking and study database."""
    here = here.model_copy(update={"tune": here.tune.model_copy(update={"study": name})})
    url = studies.storage_url(here, Layout.from_storage(here.storage))
    try:
        study = optuna.load_study(study_name=name, storage=steps.open_storage(url, here.tune))
    except KeyError:
        raise NexaError(f"tune.study {name}: no such study in {studies.safe_url(url)}; materialize hpo_study with "
                        "tune.study set to it first") from None
    return validate_config(study_recipe(study, here))


def slot_config(here: NexaConfig, key: str) -> NexaConfig:
    """The recipe a slot trains: its study's."""
    return study_config(here, slot_study(key))


def run_slot(cfg: NexaConfig, key: str, storage, tags: dict[str, Any] | None = None) -> TrialOutcome:
    """One new trial of the slot's study (`cfg` from `slot_config`, adjusted by the caller: device, tracking)."""
    from nexa_core.data.prepare import load_prepared
    from nexa_core.tuning.space import search_space

    layout = Layout.from_storage(cfg.storage)
    opened = steps.open_study(cfg, layout, create=False)
    version = opened.study.user_attrs["dataset_version"]
    dataset = load_prepared(layout.datasets_dir / version, f"tune.study {opened.name} dataset version {version}")
    trial, params = steps.ask(opened, search_space(cfg), None, {"slot": key, **(tags or {})})
    return steps.run_and_tell(opened, trial, params, cfg.model_dump(mode="json"), dataset, layout, storage)


@dataclass(frozen=True)
class BestTrial:
    study: str
    number: int
    value: float
    params: dict[str, Any]
    model: TrainedModel
    states: dict[str, int]  # trials of the study by state

    def metadata(self) -> dict[str, Any]:
        return {"study": self.study, "best_trial": self.number, "best_validation_value": self.value,
                "best_params": self.params, **{f"trials_{state}": n for state, n in self.states.items()}}


def best_model(cfg: NexaConfig, plan: StudyPlan, fetch: Callable[[list[Path]], object] | None = None) -> BestTrial:
    """The study's best complete trial as a trained model (its run folder under this process's storage). `fetch`,
    given, first brings the run folder and the dataset version to this machine (steps on workers without a shared
    disk: the trial may have trained on another one)."""
    from nexa_core.data.prepare import load_prepared
    from nexa_core.training.record import read_record
    from nexa_core.training.run import TrainResult

    cfg = study_config(cfg, plan.study)
    layout = Layout.from_storage(cfg.storage)
    opened = steps.open_study(cfg, layout, create=False)
    trials = opened.study.get_trials(deepcopy=False)
    states = dict(Counter(t.state.name.lower() for t in trials))
    best = report.best_trial(opened.study)
    if best is None:
        raise NexaError(f"tune.study {plan.study}: no complete trial yet ({_counts(states)}); run its trials "
                        "(hpo_trials) first")
    run_id = best.user_attrs.get("run_id")
    version = opened.study.user_attrs.get("dataset_version", plan.dataset_version)
    if fetch is not None and run_id:
        fetch([layout.run_dir(run_id), layout.datasets_dir / version])
    record = read_record(layout.run_dir(run_id)) if run_id else None
    if not record or record.get("status") != "complete" or "train" not in record:
        raise NexaError(f"tune.study {plan.study}: best trial {best.number}'s run {run_id} is not a complete run under "
                        f"{layout.runs_dir}; restore it (`nexa pull {run_id}`) or run more trials")
    dataset = load_prepared(layout.datasets_dir / version, f"tune.study {plan.study} dataset version {version}")
    model = TrainedModel.from_result(TrainResult(**record["train"]), dataset)
    return BestTrial(plan.study, best.number, float(best.value), dict(best.params), model, states)


def _counts(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no trials"
