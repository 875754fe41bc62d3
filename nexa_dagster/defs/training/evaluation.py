"""`evaluation_report`: test-split metrics of the trained model (its gate is built with the release chain)."""

from pathlib import Path

import dagster as dg

from nexa_core.config import NexaConfig
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
    return evaluate_model(trainer.apply(nexa.core()), trained_model, training_dataset.path, telemetry)


def evaluate_model(cfg: NexaConfig, model: TrainedModel, dataset_path: Path,
                   telemetry: NVMLTelemetryResource) -> dg.Output[EvaluationReport]:
    """The test-split evaluation of a trained model, with its telemetry and tracking links (every model line)."""
    from nexa_core.common.layout import Layout
    from nexa_core.evaluation.evaluate import evaluate_run

    layout, run_id = Layout.from_storage(cfg.storage), model.run_id
    with telemetry.measure(cfg.telemetry, layout.run_dir(run_id) / "telemetry", "evaluate") as usage:
        report = EvaluationReport(run_id, evaluate_run(cfg, run_id, dataset_path, layout))
    return dg.Output(report, metadata=to_metadata({**report.metadata(), **telemetry_values(usage.summary),
                                                   **tracking_values(model.run_dir)}))
