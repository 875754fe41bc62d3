"""`evaluation_report`: test-split metrics of the trained model (its gate is built with the release chain)."""

import dagster as dg

from nexa_core.data.dataset import PreparedDataset
from nexa_core.evaluation.report import EvaluationReport
from nexa_core.training.handoff import TrainedModel
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import telemetry_values, to_metadata
from nexa_dagster.resources import GPUTrainerResource, NexaRecipe, NVMLTelemetryResource
from nexa_dagster.resources.tracking import tracking_values


@dg.asset(group_name="training", kinds={"json"}, description="Accuracy, macro-F1, loss and per-class metrics.")
@refusals_as_failures
def evaluation_report(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                      telemetry: NVMLTelemetryResource, trained_model: TrainedModel,
                      training_dataset: PreparedDataset) -> dg.Output[EvaluationReport]:
    from nexa_core.evaluation.evaluate import evaluate_run

    cfg, layout, run_id = trainer.apply(nexa.core()), nexa.layout(), trained_model.run_id
    with telemetry.measure(cfg.telemetry, layout.run_dir(run_id) / "telemetry", "evaluate") as usage:
        report = EvaluationReport(run_id, evaluate_run(cfg, run_id, training_dataset.path, layout))
    return dg.Output(report, metadata=to_metadata({**report.metadata(), **telemetry_values(usage.summary),
                                                   **tracking_values(trained_model.run_dir)}))
