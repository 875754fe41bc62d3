"""Hyperparameter studies as assets (docs/tuning.md, "In Dagster").

`hpo_study` starts a study from the recipe (the launchpad edits `resources.nexa.config.tune`) and registers its
trial slots as partitions of `hpo_trials`. Each `hpo_trials` partition trains one trial in pool `gpu`, so N GPU
slots run N trials at once and more wait their turn. `tuned_model` hands the study's best complete trial to the
`tuned` release line: the same evaluation, thresholds and champion gate as any other model."""

import dagster as dg

from nexa_core.data.dataset import PreparedDataset
from nexa_core.evaluation.report import EvaluationReport
from nexa_core.training.handoff import TrainedModel
from nexa_core.tuning.handoff import StudyPlan, TrialOutcome
from nexa_dagster.defs.training.evaluation import evaluate_model
from nexa_dagster.defs.tuning.partitions import HPO_TRIALS
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.gpu_step import GPU_STEP
from nexa_dagster.metadata import to_metadata, training_metadata
from nexa_dagster.resources import GPUTrainerResource, MLflowTrackingResource, NexaRecipe, NVMLTelemetryResource, S3StorageResource
from nexa_dagster.resources.tracking import run_url, tracking_values
from nexa_dagster.run_tags import RUN_ID_TAG, tag_run

STUDY_TAG = "nexa/study"


@dg.asset(group_name="tuning", kinds={"optuna"},
          description="An Optuna study of the recipe's tune section (space, sampler, pruner, metric, max_trials), in "
                      "its database; registers one hpo_trials partition per trial slot.")
@refusals_as_failures
def hpo_study(context: dg.AssetExecutionContext, nexa: NexaRecipe,
              training_dataset: PreparedDataset) -> dg.Output[StudyPlan]:
    from nexa_core.tuning.slots import start_study

    plan = start_study(nexa.core().model_dump(mode="json"), training_dataset)
    new = [key for key in plan.slots if not context.instance.has_dynamic_partition(HPO_TRIALS.name, key)]
    context.instance.add_dynamic_partitions(HPO_TRIALS.name, new)
    context.instance.add_run_tags(context.run_id, {STUDY_TAG: plan.study})
    context.log.info(f"study {plan.study}: {len(plan.slots)} trial slots ({len(new)} new); hpo_trials_sensor runs them")
    return dg.Output(plan, metadata=to_metadata({**plan.metadata(), "new_slots": len(new)}))


@dg.asset(group_name="tuning", kinds={"optuna", "pytorch"}, **GPU_STEP, partitions_def=HPO_TRIALS, deps=[hpo_study],
          description="One trial of a study: the study's recipe with a sampled point, trained, evaluated and "
                      "manifested as an ordinary run; pruned at an evaluation when the pruner says so.")
@refusals_as_failures
def hpo_trials(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
               storage: S3StorageResource, tracking: MLflowTrackingResource) -> dg.Output[TrialOutcome]:
    from nexa_core.tuning.slots import run_slot, slot_config

    key = context.partition_key
    cfg = tracking.apply(trainer.apply(slot_config(nexa.core(), key)))
    context.instance.add_run_tags(context.run_id, {STUDY_TAG: cfg.tune.study})
    with tracking.scope(context):
        outcome = run_slot(cfg, key, storage.reachable_settings(), {"dagster_run_id": context.run_id})
    tag_run(context, RUN_ID_TAG, outcome.run_id)
    how = f"pruned at step {outcome.pruned_at}" if outcome.state == "pruned" else outcome.state
    context.log.info(f"trial {outcome.number} {how}: validation {cfg.tune.metric} {outcome.value:.4f}, run {outcome.run_id}")
    run_dir = nexa.layout().run_dir(outcome.run_id)
    run = tracking_values(run_dir)
    values = {"study": cfg.tune.study, "trial_number": outcome.number, "state": outcome.state,
              f"validation_{cfg.tune.metric}": outcome.value, "params": outcome.params, "steps": outcome.steps,
              "pruned_at_step": outcome.pruned_at, "run_id": outcome.run_id, "seconds": outcome.seconds,
              **{f"test_{k}": v for k, v in outcome.test.items()}, **run}
    return dg.Output(outcome, metadata=training_metadata(values, run_dir / "logs" / "train_log.jsonl",
                                                         tracking_url=run_url(run)))


@dg.asset(group_name="tuning", kinds={"pytorch", "huggingface"}, deps=[hpo_trials],
          description="The study's best complete trial, as a trained model for the tuned release line (evaluation, "
                      "meets_thresholds, champion gate, package, deploy).")
@refusals_as_failures
def tuned_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, hpo_study: StudyPlan) -> dg.Output[TrainedModel]:
    from nexa_core.tuning.slots import best_model
    from nexa_dagster.execution.handoff_io import fetcher

    # The best trial may have trained on another worker: its run folder comes from the hand-off store then.
    best = best_model(nexa.core(), hpo_study, fetch=fetcher(nexa.layout()))
    model = best.model
    tag_run(context, RUN_ID_TAG, model.run_id)
    run = tracking_values(model.run_dir)
    context.log.info(f"study {best.study}: best trial {best.number} (validation {hpo_study.metric} {best.value:.4f}), "
                     f"run {model.run_id}")
    return dg.Output(model, metadata=training_metadata({**model.metadata(), **best.metadata(), **run}, model.log_path,
                                                       tracking_url=run_url(run)))


@dg.asset(group_name="tuning", kinds={"json"},
          description="Test-split accuracy, macro-F1, loss and per-class metrics of the study's best trial.")
@refusals_as_failures
def tuned_evaluation(nexa: NexaRecipe, trainer: GPUTrainerResource, telemetry: NVMLTelemetryResource,
                     hpo_study: StudyPlan, tuned_model: TrainedModel) -> dg.Output[EvaluationReport]:
    from nexa_core.tuning.slots import study_config

    cfg = trainer.apply(study_config(nexa.core(), hpo_study.study))  # evaluated as the trial was trained
    return evaluate_model(cfg, tuned_model, tuned_model.dataset.path, telemetry)
