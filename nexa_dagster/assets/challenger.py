"""The challenger line: a model trained on the latest `incremental_dataset`, evaluated, compared with the
deployed champion on the same test split, and released (`challenger_*` assets from `release_assets`) only
when every blocking check passes: the thresholds and `beats_champion`."""

from pathlib import Path

import dagster as dg

from nexa_core import steps
from nexa_dagster.assets.evaluation import threshold_check
from nexa_dagster.automation import FOLLOW_CHECKED
from nexa_dagster.metadata import image, numbers
from nexa_dagster.resources import GPUTrainerResource, NexaRecipe

GROUP = "drops"


@dg.asset(group_name=GROUP, kinds={"pytorch", "huggingface"}, pool="gpu", automation_condition=FOLLOW_CHECKED,
          description="A classifier fine-tuned on the latest drop dataset (the challenger).")
def challenger_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                     incremental_dataset: dict) -> dg.Output[dict]:
    from nexa_core.plots import loss_curve

    cfg, layout = nexa.core(), nexa.layout()
    run_id, resuming = steps.claim_run(cfg, incremental_dataset["version"], layout)
    context.log.info(f"{'resuming' if resuming else 'starting'} challenger run {run_id}")
    result = trainer.train(cfg, Path(incremental_dataset["path"]), run_id, layout)
    curve = loss_curve(result.log_path, Path(result.run_dir) / "loss_curve.png")
    value = {"run_id": run_id, "run_dir": result.run_dir, "final_dir": result.final_dir,
             "train_metrics": result.train_metrics}
    return dg.Output(value, metadata={"run_id": run_id, "run_dir": dg.MetadataValue.path(result.run_dir),
                                      "dataset_version": incremental_dataset["version"],
                                      "global_step": result.global_step, **numbers(result.train_metrics),
                                      **image(curve)})


@dg.asset(group_name=GROUP, kinds={"json"}, automation_condition=FOLLOW_CHECKED,
          description="The challenger's test metrics and, on the same test split, the deployed champion's.")
def challenger_evaluation(context: dg.AssetExecutionContext, nexa: NexaRecipe, challenger_model: dict,
                          incremental_dataset: dict) -> dg.Output[dict]:
    from nexa_core.promotion import champion_vs_challenger

    cfg, layout = nexa.core(), nexa.layout()
    dataset_dir = Path(incremental_dataset["path"])
    report = steps.evaluate_run(cfg, challenger_model["run_id"], dataset_dir, layout)
    decision = champion_vs_challenger(cfg, layout, dataset_dir, report, challenger_model["run_id"])
    context.log.info(f"champion/challenger: {decision['reason']}")
    return dg.Output({**report, "promotion": decision}, metadata={
        **numbers({k: report[k] for k in ("accuracy", "macro_f1", "loss")}),
        "num_examples": report["num_examples"], "run_id": challenger_model["run_id"],
        "champion_run_id": str(decision["champion_run_id"]), "promote": decision["promote"],
        "promotion": dg.MetadataValue.json(decision)})


@dg.asset_check(asset=challenger_evaluation, blocking=True,
                description="The challenger beats the deployed champion on the same test split by "
                            "evaluation.promotion.metric and min_improvement.")
def beats_champion(challenger_evaluation: dict) -> dg.AssetCheckResult:
    decision = challenger_evaluation["promotion"]
    return dg.AssetCheckResult(passed=bool(decision["promote"]), severity=dg.AssetCheckSeverity.ERROR,
                               description=decision["reason"],
                               metadata={"comparison": dg.MetadataValue.json(decision),
                                         "champion_run_id": str(decision["champion_run_id"]),
                                         "challenger_run_id": decision["challenger_run_id"],
                                         **numbers({k: decision[k] for k in ("challenger_value", "champion_value",
                                                                             "improvement")
                                                    if decision.get(k) is not None})})


challenger_meets_thresholds = threshold_check(challenger_evaluation)
