"""`trained_model`: the fine-tuned classifier (`final/`), resuming an interrupted run of the same work."""

from pathlib import Path

import dagster as dg

from nexa_core.training.steps import claim_run
from nexa_dagster.metadata import image, numbers
from nexa_dagster.resources import GPUTrainerResource, NexaRecipe, NVMLTelemetryResource, telemetry_metadata

@dg.asset(group_name="training", kinds={"pytorch", "huggingface"}, pool="gpu", description="Fine-tuned classifier.")
def trained_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  telemetry: NVMLTelemetryResource, training_dataset: dict) -> dg.Output[dict]:
    from nexa_core.training.plots import loss_curve

    cfg, layout = trainer.apply(nexa.core()), nexa.layout()
    run_id, resuming = claim_run(cfg, training_dataset["version"], layout)
    context.log.info(f"{'resuming' if resuming else 'starting'} training run {run_id}")
    with telemetry.measure(cfg.telemetry, layout.run_dir(run_id) / "telemetry", "train") as usage:
        result = trainer.train(cfg, Path(training_dataset["path"]), run_id, layout)
    curve = loss_curve(result.log_path, Path(result.run_dir) / "loss_curve.png")
    value = {"run_id": run_id, "run_dir": result.run_dir, "final_dir": result.final_dir,
             "train_metrics": result.train_metrics, "dataset": training_dataset}  # the manifest records it
    metadata = {
        "run_id": run_id,
        "run_dir": dg.MetadataValue.path(result.run_dir),
        "final_dir": dg.MetadataValue.path(result.final_dir),
        "best_checkpoint": str(result.best_checkpoint),
        "resumed_from": str(result.resumed_from),
        "global_step": result.global_step,
        "dataset_version": training_dataset["version"],
        **numbers(result.train_metrics),
        **numbers(result.best_eval, prefix="best_validation_"),
        **image(curve),
        **telemetry_metadata(usage.summary),
    }
    return dg.Output(value, metadata=metadata)
