"""Distillation assets: teacher -> teacher inputs -> teacher outputs -> filtered pairs -> student -> evaluation.

Everything downstream of the teacher is partitioned by input set (`teacher_inputs` dynamic partitions),
so a new batch of inputs adds a partition and only its new outputs are computed. An input set `drops-<version>`
(registered by `drop_dataset_sensor`) is built from that drop dataset version, and its student is trained,
tested and compared with the deployed champion on it.
"""

from pathlib import Path
from types import SimpleNamespace

import dagster as dg

from nexa_dagster.metadata import numbers
from nexa_dagster.defs.distillation.promotion import decide_promotion, promotion_metadata
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.resources import GPUTrainerResource, NexaRecipe, NVMLTelemetryResource, telemetry_metadata

GROUP = "distillation"


def _dataset(value: dict) -> SimpleNamespace:
    return SimpleNamespace(**{**value, "path": Path(value["path"])})


@dg.asset(group_name=GROUP, pool="gpu", kinds={"huggingface"},
          description="The fine-tuned teacher: distill.teacher if pinned, else trained here (reused once trained).")
def teacher_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  telemetry: NVMLTelemetryResource, training_dataset: dict) -> dg.Output[dict]:
    from nexa_core.distill import pipeline

    cfg, layout = trainer.apply(nexa.core()), nexa.layout()
    with telemetry.measure(cfg.telemetry, None, "train") as usage:  # the run id is claimed inside
        teacher = pipeline.teacher_model(cfg, layout, _dataset(training_dataset))
    if teacher["trained"]:
        usage.save(layout.run_dir(teacher["run_id"]) / "telemetry")
    context.log.info(f"teacher {teacher['version']} at {teacher['path']} ({'trained' if teacher['trained'] else 'reused'})")
    return dg.Output(teacher, metadata={"teacher_version": teacher["version"], "path": str(teacher["path"]),
                                        "run_id": str(teacher["run_id"]), "trained_now": teacher["trained"],
                                        **telemetry_metadata(usage.summary)})


# `incremental_dataset` is a lineage dependency only: partitions named drops-<version> read that stored version.
@dg.asset(group_name=GROUP, kinds={"parquet"}, partitions_def=TEACHER_INPUTS, deps=["incremental_dataset"],
          description="A versioned, immutable set of texts for the teacher (the partition key is the version): "
                      "from training_dataset, or for drops-<version> from that drop dataset version.")
def teacher_inputs(context: dg.AssetExecutionContext, nexa: NexaRecipe, training_dataset: dict) -> dg.Output[dict]:
    from nexa_core.distill import pipeline

    info = pipeline.teacher_inputs(nexa.core(), nexa.layout(), _dataset(training_dataset), context.partition_key)
    return dg.Output({"version": info["version"], "path": info["path"]},
                     metadata={"inputs_path": dg.MetadataValue.path(info["path"]), "reused": info["reused"],
                               "dataset_version": info["source_dataset_version"],
                               **{f"rows_{k}": v for k, v in info["counts"].items()}})


@dg.asset(group_name=GROUP, pool="gpu", kinds={"parquet"}, partitions_def=TEACHER_INPUTS,
          description="Teacher top-k logits per input, in resumable Parquet chunks keyed by teacher version.")
def teacher_outputs(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                    telemetry: NVMLTelemetryResource, teacher_model: dict, teacher_inputs: dict) -> dg.Output[dict]:
    from nexa_core.distill import pipeline

    cfg, layout, key = trainer.apply(nexa.core()), nexa.layout(), context.partition_key
    folder = pipeline.outputs_dir(layout, pipeline.labels_version(cfg, teacher_model)) / "telemetry"
    with telemetry.measure(cfg.telemetry, folder, f"inputs-{key}") as usage:
        stats = pipeline.teacher_outputs(cfg, layout, teacher_model, key)
    return dg.Output(stats, metadata={"outputs_path": dg.MetadataValue.path(stats["path"]),
                                      "teacher_version": stats["teacher_version"], "precision": stats["precision"],
                                      **numbers({k: stats[k] for k in ("computed", "skipped", "chunks_written",
                                                                       "seconds", "inputs_per_second")}),
                                      **telemetry_metadata(usage.summary)})


@dg.asset(group_name=GROUP, kinds={"parquet"}, partitions_def=TEACHER_INPUTS,
          description="Teacher outputs that pass the filters; kept and dropped counts per reason.")
def distillation_pairs(context: dg.AssetExecutionContext, nexa: NexaRecipe, teacher_outputs: dict) -> dg.Output[dict]:
    from nexa_core.distill import pipeline

    info = pipeline.distillation_pairs(nexa.core(), nexa.layout(), teacher_outputs["teacher_version"],
                                       context.partition_key)
    return dg.Output(info, metadata={"pairs_path": dg.MetadataValue.path(info["path"]), "kept": info["kept"],
                                     "total": info["total"], **{f"dropped_{k}": v for k, v in info["drops"].items()}})


@dg.asset(group_name=GROUP, pool="gpu", kinds={"pytorch", "huggingface"}, partitions_def=TEACHER_INPUTS,
          description="Student with fewer layers, initialised from the teacher, trained with the KD loss.")
def student_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  telemetry: NVMLTelemetryResource, teacher_model: dict, distillation_pairs: dict) -> dg.Output[dict]:
    from nexa_core.distill import pipeline

    cfg, layout = trainer.apply(nexa.core()), nexa.layout()
    with telemetry.measure(cfg.telemetry, None, "train") as usage:  # the run id is claimed inside
        student = pipeline.student_model(cfg, layout, teacher_model, distillation_pairs)
    usage.save(layout.run_dir(student["run_id"]) / "telemetry")
    return dg.Output(student, metadata={"run_id": student["run_id"], "final_dir": dg.MetadataValue.path(student["final_dir"]),
                                        "dataset_version": student["dataset"]["version"],
                                        "global_step": student["global_step"], **numbers(student.get("train_metrics", {})),
                                        **telemetry_metadata(usage.summary)})


@dg.asset(group_name=GROUP, kinds={"json"}, partitions_def=TEACHER_INPUTS,
          description="Student and teacher on the student's test split (quality, agreement, size, latency), and "
                      "the deployed champion on the same split (the promotion decision).")
def student_evaluation(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                       telemetry: NVMLTelemetryResource, teacher_model: dict, student_model: dict) -> dg.Output[dict]:
    from nexa_core.distill import pipeline
    from nexa_core.distill.compare import summary_line

    cfg, layout = trainer.apply(nexa.core()), nexa.layout()
    with telemetry.measure(cfg.telemetry, layout.run_dir(student_model["run_id"]) / "telemetry", "evaluate") as usage:
        report = pipeline.compare_models(cfg, layout, teacher_model, student_model)
    comparison = {k: v for k, v in report.items() if k != "student_report"}
    student = report["student_report"]
    context.log.info(summary_line(comparison))
    promotion = {}
    if cfg.distill.kind == "classifier":
        student["promotion"] = decide_promotion(context, cfg, layout, student, student_model)
        promotion = promotion_metadata(student["promotion"])
    return dg.Output({**student, "comparison": comparison},
                     metadata={**numbers(comparison), **numbers(student), **promotion,
                               "metrics_path": dg.MetadataValue.path(student["metrics_path"]),
                               **telemetry_metadata(usage.summary)})
