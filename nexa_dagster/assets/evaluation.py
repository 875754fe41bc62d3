"""`evaluation_report`: test-split metrics of the trained model, and the blocking gate on them."""

import dagster as dg

from nexa_core import steps
from nexa_core.gates import gate_failures
from nexa_dagster.metadata import numbers
from nexa_dagster.resources import NexaRecipe, NVMLTelemetryResource, telemetry_metadata

@dg.asset(group_name="training", kinds={"json"}, description="Accuracy, macro-F1, loss and per-class metrics.")
def evaluation_report(context: dg.AssetExecutionContext, nexa: NexaRecipe, telemetry: NVMLTelemetryResource,
                      trained_model: dict, training_dataset: dict) -> dg.Output[dict]:
    from pathlib import Path

    cfg, layout, run_id = nexa.core(), nexa.layout(), trained_model["run_id"]
    with telemetry.measure(cfg.telemetry, layout.run_dir(run_id) / "telemetry", "evaluate") as usage:
        report = steps.evaluate_run(cfg, run_id, Path(training_dataset["path"]), layout)
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

def threshold_check(asset) -> dg.AssetChecksDefinition:
    """A blocking check: the report's test metrics meet evaluation.thresholds, else no package or deploy."""

    # A partitioned report is checked per partition, in the same run as the partition it gates.
    @dg.asset_check(asset=asset, name="meets_thresholds", blocking=True, partitions_def=asset.partitions_def,
                    description="Test metrics meet evaluation.thresholds; a failing model is not packaged or deployed.")
    def meets_thresholds(nexa: NexaRecipe, report: dict) -> dg.AssetCheckResult:
        thresholds = nexa.core().evaluation.thresholds
        failures = gate_failures(report, thresholds)
        return dg.AssetCheckResult(
            passed=not failures,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"thresholds": dg.MetadataValue.json(thresholds), "failures": dg.MetadataValue.json(failures),
                      **numbers({k: report[k] for k in ("accuracy", "macro_f1", "agreement") if k in report})},
        )

    return meets_thresholds


evaluation_report_meets_thresholds = threshold_check(evaluation_report)
