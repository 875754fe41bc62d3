"""`evaluation_report`: test-split metrics of the trained model, and the blocking gate on them."""

import dagster as dg

from nexa_dagster.metadata import numbers
from nexa_dagster.resources import GPUTrainerResource, NexaRecipe, NVMLTelemetryResource, telemetry_metadata

@dg.asset(group_name="training", kinds={"json"}, description="Accuracy, macro-F1, loss and per-class metrics.")
def evaluation_report(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                      telemetry: NVMLTelemetryResource, trained_model: dict, training_dataset: dict) -> dg.Output[dict]:
    from pathlib import Path

    from nexa_core.evaluation.evaluate import evaluate_run

    cfg, layout, run_id = trainer.apply(nexa.core()), nexa.layout(), trained_model["run_id"]
    with telemetry.measure(cfg.telemetry, layout.run_dir(run_id) / "telemetry", "evaluate") as usage:
        report = evaluate_run(cfg, run_id, Path(training_dataset["path"]), layout)
    per_class = {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
                 for name, scores in report["per_class"].items()}
    metadata = {
        **numbers({k: report[k] for k in ("accuracy", "macro_f1", "loss")}),
        "num_examples": report["num_examples"],
        "per_class": dg.MetadataValue.json(per_class),
        "metrics_path": dg.MetadataValue.path(report["metrics_path"]),
        "run_id": trained_model["run_id"],
        **telemetry_metadata(usage.summary),
    }
    if "predictions_path" in report:
        metadata["predictions_path"] = dg.MetadataValue.path(report["predictions_path"])
    return dg.Output(report, metadata=metadata)
