"""Distillation assets: teacher -> teacher inputs -> teacher outputs -> filtered pairs -> student -> evaluation.

Everything downstream of the teacher is partitioned by input set (`teacher_inputs` dynamic partitions),
so a new batch of inputs adds a partition and only its new outputs are computed. An input set `drops-<version>`
(registered by `drop_dataset_sensor`) is built from that drop dataset version, and its student is trained,
tested and compared with the deployed champion on it. Each asset turns its config into one core call
(nexa_core/distill/pipeline.py) and hands the next a typed value (nexa_core/distill/handoff.py).
"""

import dagster as dg

from nexa_core.data.dataset import PreparedDataset
from nexa_core.distill.handoff import DistillationPairs, InputSet, Teacher, TeacherOutputs
from nexa_core.evaluation.report import EvaluationReport
from nexa_core.training.handoff import TrainedModel
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.distillation.promotion import decide_promotion
from nexa_dagster.deploy_step import DEPLOY_STEP_TAGS
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.gpu_step import GPU_STEP
from nexa_dagster.metadata import telemetry_values, to_metadata, training_metadata
from nexa_dagster.resources import GPUTrainerResource, MLflowTrackingResource, NexaRecipe, NVMLTelemetryResource, S3StorageResource
from nexa_dagster.resources.tracking import run_url, tracking_values
from nexa_dagster.run_tags import RUN_ID_TAG, TEACHER_RUN_ID_TAG, tag_run

GROUP = "distillation"


@dg.asset(group_name=GROUP, **GPU_STEP, kinds={"huggingface"},
          description="The fine-tuned teacher: distill.teacher if pinned, else trained here (reused once trained).")
@refusals_as_failures
def teacher_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  telemetry: NVMLTelemetryResource, storage: S3StorageResource, tracking: MLflowTrackingResource,
                  training_dataset: PreparedDataset) -> dg.Output[Teacher]:
    from nexa_core.distill import pipeline

    cfg, layout = tracking.apply(trainer.apply(nexa.core())), nexa.layout()
    # The run id is claimed inside.
    with telemetry.measure(cfg.telemetry, None, "train") as usage, tracking.scope(context), \
            trainer.gpu(cfg, layout) as leased:
        launcher = trainer.launcher(context)  # several processes: torchrun through Pipes, rank 0 reporting
        teacher = pipeline.teacher_model(leased, layout, training_dataset, storage=storage.reachable_settings(),
                                         launcher=launcher)
    tag_run(context, TEACHER_RUN_ID_TAG, teacher.run_id)
    if teacher.trained:
        usage.save(layout.run_dir(teacher.run_id) / "telemetry")
    context.log.info(f"teacher {teacher.version} at {teacher.path} ({'trained' if teacher.trained else 'reused'})")
    # A reused or pinned teacher shows the curves of the run that trained it, where one did; its figures are
    # that run's, and this materialization's telemetry only when it trained here.
    run = tracking_values(teacher.log_path.parent.parent if teacher.log_path else None)
    return dg.Output(teacher, metadata=training_metadata({**teacher.metadata(), **run, **launcher.reported_metadata()},
                                                         teacher.log_path,
                                                         no_curve=teacher.no_curve_reason, tracking_url=run_url(run),
                                                         telemetry=usage.summary if teacher.trained else None))


# `incremental_dataset` is a lineage dependency only: partitions named drops-<version> read that stored version.
@dg.asset(group_name=GROUP, kinds={"parquet"}, partitions_def=TEACHER_INPUTS, deps=["incremental_dataset"],
          description="A versioned, immutable set of texts for the teacher (the partition key is the version): "
                      "from training_dataset, or for drops-<version> from that drop dataset version.")
@refusals_as_failures
def teacher_inputs(context: dg.AssetExecutionContext, nexa: NexaRecipe,
                   training_dataset: PreparedDataset) -> dg.Output[InputSet]:
    from nexa_core.distill import pipeline

    inputs = pipeline.teacher_inputs(nexa.core(), nexa.layout(), training_dataset, context.partition_key)
    return dg.Output(inputs, metadata=to_metadata(inputs.metadata()))


@dg.asset(group_name=GROUP, **GPU_STEP, kinds={"parquet"}, partitions_def=TEACHER_INPUTS,
          description="Teacher top-k logits per input, in resumable Parquet chunks keyed by teacher version.")
@refusals_as_failures
def teacher_outputs(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                    telemetry: NVMLTelemetryResource, tracking: MLflowTrackingResource, teacher_model: Teacher,
                    teacher_inputs: InputSet) -> dg.Output[TeacherOutputs]:
    from nexa_core.distill import pipeline

    cfg, layout, key = tracking.apply(trainer.apply(nexa.core())), nexa.layout(), context.partition_key
    folder = pipeline.outputs_dir(layout, pipeline.labels_version(cfg, teacher_model)) / "telemetry"
    with telemetry.measure(cfg.telemetry, folder, f"inputs-{key}") as usage, tracking.scope(context), \
            trainer.gpu(cfg, layout) as leased:
        outputs = pipeline.teacher_outputs(leased, layout, teacher_model, key)
    link = {"mlflow_run": dg.MetadataValue.url(outputs.mlflow_url)} if outputs.mlflow_url else {}
    return dg.Output(outputs, metadata=to_metadata({**outputs.metadata(), **link, **telemetry_values(usage.summary)}))


@dg.asset(group_name=GROUP, kinds={"parquet"}, partitions_def=TEACHER_INPUTS,
          description="Teacher outputs that pass the filters; kept and dropped counts per reason.")
@refusals_as_failures
def distillation_pairs(context: dg.AssetExecutionContext, nexa: NexaRecipe,
                       teacher_outputs: TeacherOutputs) -> dg.Output[DistillationPairs]:
    from nexa_core.distill import pipeline

    pairs = pipeline.distillation_pairs(nexa.core(), nexa.layout(), teacher_outputs.teacher_version,
                                        context.partition_key)
    return dg.Output(pairs, metadata=to_metadata(pairs.metadata()))


@dg.asset(group_name=GROUP, **GPU_STEP, kinds={"pytorch", "huggingface"}, partitions_def=TEACHER_INPUTS,
          description="Student with fewer layers, initialised from the teacher, trained with the KD loss.")
@refusals_as_failures
def student_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  telemetry: NVMLTelemetryResource, storage: S3StorageResource, tracking: MLflowTrackingResource,
                  teacher_model: Teacher, distillation_pairs: DistillationPairs) -> dg.Output[TrainedModel]:
    from nexa_core.distill import pipeline

    cfg, layout = tracking.apply(trainer.apply(nexa.core())), nexa.layout()
    # The run id is claimed inside.
    with telemetry.measure(cfg.telemetry, None, "train") as usage, tracking.scope(context), \
            trainer.gpu(cfg, layout) as leased:
        launcher = trainer.launcher(context)
        student = pipeline.student_model(leased, layout, teacher_model, distillation_pairs,
                                         storage=storage.reachable_settings(), launcher=launcher)
    tag_run(context, RUN_ID_TAG, student.run_id)
    usage.save(layout.run_dir(student.run_id) / "telemetry")
    run = tracking_values(student.run_dir)
    return dg.Output(student, metadata=training_metadata({**student.metadata(), **run, **launcher.reported_metadata()},
                                                         student.log_path,
                                                         telemetry=usage.summary, tracking_url=run_url(run)))


@dg.asset(group_name=GROUP, kinds={"json"}, partitions_def=TEACHER_INPUTS,
          op_tags=DEPLOY_STEP_TAGS,  # it re-scores the deployed champion: where the deployment register is
          description="Student and teacher on the student's test split (quality, agreement, size, latency), and "
                      "the deployed champion on the same split (the promotion decision).")
@refusals_as_failures
def student_evaluation(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                       telemetry: NVMLTelemetryResource, teacher_model: Teacher,
                       student_model: TrainedModel) -> dg.Output[EvaluationReport]:
    from nexa_core.distill import pipeline
    from nexa_core.distill.compare import summary_line

    cfg, layout = trainer.apply(nexa.core()), nexa.layout()
    with telemetry.measure(cfg.telemetry, layout.run_dir(student_model.run_id) / "telemetry", "evaluate") as usage:
        report = pipeline.compare_models(cfg, layout, teacher_model, student_model)
    context.log.info(summary_line(report.comparison))
    if cfg.distill.kind == "classifier":
        report = report.with_promotion(decide_promotion(context, cfg, layout, report, student_model))
    return dg.Output(report, metadata=to_metadata({**report.metadata(), **telemetry_values(usage.summary),
                                                   **tracking_values(student_model.run_dir)}))
