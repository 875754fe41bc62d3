"""`trained_model`: the fine-tuned classifier (`final/`), resuming an interrupted run of the same work."""

import dagster as dg

from nexa_core.data.dataset import PreparedDataset
from nexa_core.training.handoff import TrainedModel
from nexa_core.training.steps import claim_run
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.gpu_step import GPU_STEP
from nexa_dagster.metadata import training_metadata
from nexa_dagster.resources import GPUTrainerResource, MLflowTrackingResource, NexaRecipe, NVMLTelemetryResource, S3StorageResource
from nexa_dagster.resources.tracking import run_url, tracking_values
from nexa_dagster.run_tags import RUN_ID_TAG, tag_run


@dg.asset(group_name="training", kinds={"pytorch", "huggingface"}, **GPU_STEP, description="Fine-tuned classifier.")
@refusals_as_failures
def trained_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  telemetry: NVMLTelemetryResource, storage: S3StorageResource, tracking: MLflowTrackingResource,
                  training_dataset: PreparedDataset) -> dg.Output[TrainedModel]:
    cfg, layout = tracking.apply(trainer.apply(nexa.core())), nexa.layout()
    durable = storage.reachable_settings()
    with claim_run(cfg, training_dataset.version, layout) as claim:
        context.log.info(claim.message)
        tag_run(context, RUN_ID_TAG, claim.run_id)
        with telemetry.measure(cfg.telemetry, claim.run_dir / "telemetry", "train") as usage, tracking.scope(context), \
                trainer.gpu(cfg, layout) as leased:
            launcher = trainer.launcher(context)  # several processes: torchrun through Pipes, rank 0 reporting
            result = trainer.train(leased, training_dataset.path, claim.run_id, layout, storage=durable,
                                   launcher=launcher)
    model = TrainedModel.from_result(result, training_dataset)
    run = tracking_values(model.run_dir)
    return dg.Output(model, metadata=training_metadata({**model.metadata(), **run, **launcher.reported_metadata()},
                                                       model.log_path, telemetry=usage.summary,
                                                       tracking_url=run_url(run)))
