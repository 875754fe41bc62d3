"""The distillation steps as plain functions (assets and `nexa distill` call these):
teacher -> teacher inputs -> teacher outputs -> filtered pairs -> student -> side-by-side evaluation."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.resolve import resolve_location
from nexa_core.config import NexaConfig
from nexa_core.data.dataset import PreparedDataset
from nexa_core.distill.handoff import DistillationPairs, InputSet, Teacher, TeacherOutputs
from nexa_core.evaluation.report import EvaluationReport
from nexa_core.storage.settings import StorageSettings
from nexa_core.training.handoff import TrainedModel
from nexa_core.training.steps import claim_run, train_run


def teacher_model(cfg: NexaConfig, layout: Layout, dataset: PreparedDataset,
                  storage: StorageSettings | None = None, launcher=None) -> Teacher:
    """A pinned fine-tuned teacher (`distill.teacher`), or a teacher fine-tuned here from model.name_or_path
    (its best checkpoints pushed to the durable store of `storage`; None: the environment's settings). `launcher`
    starts torchrun when training.distributed asks for several processes (nexa_core/training/launch.py)."""
    if cfg.distill.teacher:
        return _teacher(Path(_materialize_pinned(cfg.distill.teacher, layout)), None, trained=False)
    from nexa_core.training.record import find_run, work_key

    # A teacher already trained for this exact work is reused: students iterate, the teacher stays put.
    done = find_run(layout.runs_dir, work_key(cfg, dataset.version), "complete")
    if done:
        return _teacher(layout.run_dir(done) / "final", done, trained=False)
    from nexa_core.training.record import update_record

    with claim_run(cfg, dataset.version, layout, name=f"{cfg.name}-teacher") as claim:
        run_id = claim.run_id
        update_record(claim.run_dir, lineage={"role": "teacher"})  # training adds its data, model and code
        result = train_run(cfg, dataset.path, run_id, layout, storage=storage, launcher=launcher)
    return _teacher(Path(result.final_dir), run_id, trained=True)


def _teacher(final: Path, run_id: str | None, trained: bool) -> Teacher:
    """The teacher with the history of the run that made it, if its folder is a run's `final/` (a pinned model
    may be one): that run's figures and training log, so its curves can be shown."""
    from nexa_core.distill.collect import teacher_version
    from nexa_core.training.record import read_record

    record = (read_record(final.parent) if final.name == "final" else None) or {}
    train = record.get("train") or {}
    log = final.parent / "logs" / "train_log.jsonl"
    return Teacher(final, teacher_version(final), run_id, trained=trained, train_metrics=train.get("train_metrics", {}),
                   best_eval=train.get("best_eval", {}), log_path=log if record and log.is_file() else None,
                   trained_by=record.get("run_id"))


def _materialize_pinned(location: str, layout: Layout) -> str:
    """Local folders are used in place; a hub id is downloaded once into the durable teachers folder."""
    path = resolve_location(location, "distill.teacher")
    if Path(path).is_dir():
        return path
    if location.startswith(("/", ".", "~")):
        raise NexaError(f"distill.teacher: {path} does not exist; point it at a fine-tuned model folder or hub id")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = pinned_teacher_dir(location, layout)
    if not (target / "config.json").is_file():
        try:
            model = AutoModelForSequenceClassification.from_pretrained(location)
            tokenizer = AutoTokenizer.from_pretrained(location)
        except OSError as err:
            raise NexaError(f"distill.teacher: cannot load {location!r} from the hub ({str(err).splitlines()[0]}); "
                            "use a local folder") from None
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
    return str(target)


def pinned_teacher_dir(location: str, layout: Layout) -> Path:
    """Where a hub-id teacher is kept once downloaded (reused offline afterwards)."""
    return layout.durable / "teachers" / location.replace("/", "--")


def teacher_source(cfg: NexaConfig, layout: Layout) -> str | None:
    """What the pinned teacher is read from: its downloaded copy if there is one, else as given (None: not pinned)."""
    location = cfg.distill.teacher
    if location and not location.startswith(("/", ".", "~", "package://")):
        stored = pinned_teacher_dir(location, layout)
        if (stored / "config.json").is_file():
            return str(stored)
    return location or None


def inputs_dataset(layout: Layout, version: str, default):
    """The prepared dataset input set `version` is built from: `default` unless it is a drop input set."""
    from nexa_core.data.names import DROP_INPUTS, validate_name
    from nexa_core.data.prepare import load_prepared

    if not validate_name(version).startswith(DROP_INPUTS):
        return default
    return load_prepared(layout.datasets_dir / version[len(DROP_INPUTS):], f"teacher_inputs {version!r}")


def inputs_source(layout: Layout, version: str):
    """The prepared dataset an existing input set was built from (its labels, validation and test splits)."""
    from nexa_core.data.prepare import load_prepared

    meta = _inputs_meta(layout, version)
    stored = layout.datasets_dir / meta["source_dataset_version"]
    # The version folder under today's storage root; the recorded absolute path if the root was not moved.
    return load_prepared(stored if stored.is_dir() else meta["source_dataset_path"], f"teacher_inputs {version!r}")


def teacher_inputs(cfg: NexaConfig, layout: Layout, dataset: PreparedDataset, version: str | None = None,
                   extra_texts: pd.DataFrame | None = None) -> InputSet:
    from nexa_core.distill.inputs import build_teacher_inputs

    version = version or cfg.distill.inputs_version
    dataset = inputs_dataset(layout, version, dataset)
    if extra_texts is None and cfg.distill.unlabelled_path:
        extra_texts = _unlabelled_texts(cfg)
    info = build_teacher_inputs(dataset.path, layout.distill_dir, version, extra_texts)
    return InputSet(version, Path(info["path"]), info["source_dataset_version"], dict(info["counts"]), info["reused"])


def _unlabelled_texts(cfg: NexaConfig) -> pd.DataFrame:
    """Unlabelled texts through the same loading code as training data (formats, encoding checks)."""
    from nexa_core.data.loading import load_raw

    source = cfg.data.model_copy(update={"path": cfg.distill.unlabelled_path, "name": None})
    frame = load_raw(source)
    if cfg.data.text_column not in frame.columns:
        raise NexaError(f"distill.unlabelled_path: no column {cfg.data.text_column!r} (data.text_column) in "
                        f"{cfg.distill.unlabelled_path}; columns are {list(frame.columns)}")
    return pd.DataFrame({"text": frame[cfg.data.text_column]})


def _inputs_meta(layout: Layout, version: str) -> dict:
    from nexa_core.data.names import INPUTS_META, inputs_dir

    return read_json(inputs_dir(layout.distill_dir, version) / INPUTS_META)


def _inputs_frame(layout: Layout, version: str) -> pd.DataFrame:
    from nexa_core.data.names import INPUTS_FILE, inputs_dir

    return pd.read_parquet(inputs_dir(layout.distill_dir, version) / INPUTS_FILE)


def outputs_dir(layout: Layout, teacher_version: str) -> Path:
    return layout.distill_dir / "teacher_outputs" / teacher_version


def labels_version(cfg: NexaConfig, teacher: Teacher) -> str:
    """The version the teacher's outputs are kept under: its weights' version plus the precision, if not fp32."""
    from nexa_core.distill import precision

    _, _, resolved = precision.resolve_precision(cfg.training.device, cfg.distill.teacher_precision)
    return precision.labels_version(teacher.version, resolved)


def teacher_outputs(cfg: NexaConfig, layout: Layout, teacher: Teacher, version: str) -> TeacherOutputs:
    """Label every input of the set not yet labelled by this teacher version (resumable, chunked)."""
    with _tracked_outputs(cfg, teacher, version) as tracker:
        outputs = _label_inputs(cfg, layout, teacher, version)
        tracker.log_metrics({k: v for k, v in outputs.metadata().items() if isinstance(v, (int, float))})
    return replace(outputs, mlflow_run_id=tracker.run_id, mlflow_url=tracker.url)


@contextmanager
def _tracked_outputs(cfg: NexaConfig, teacher: Teacher, version: str):
    """Teacher outputs as an MLflow run nested in the distillation run of this teacher version and input set."""
    from nexa_core.tracking.distillation import nested_in_distillation
    from nexa_core.tracking.runs import step_run

    labels = labels_version(cfg, teacher)
    d = cfg.distill
    params = {"teacher_version": labels, "inputs_version": version, "teacher_path": str(teacher.path),
              "teacher_precision": d.teacher_precision, "top_k": str(d.top_k), "batch_size": str(d.batch_size),
              "kind": d.kind}
    with nested_in_distillation(cfg, labels, version), step_run(
            cfg, f"teacher-outputs-{version}", params=params,
            tags={"nexa.kind": "teacher_outputs", "nexa.teacher_version": labels, "nexa.inputs_version": version,
                  "nexa.teacher_run_id": teacher.run_id or teacher.trained_by}) as tracker:
        yield tracker


def _label_inputs(cfg: NexaConfig, layout: Layout, teacher: Teacher, version: str) -> TeacherOutputs:
    from nexa_core.distill.collect import collect_classification, collect_generation

    inputs = _inputs_frame(layout, version)[["input_id", "text"]]
    out = outputs_dir(layout, labels_version(cfg, teacher))
    d = cfg.distill
    if d.kind == "causal_lm":
        inputs = inputs.assign(text=[d.prompt_template.format(text=t) for t in inputs["text"]])
        stats = collect_generation(str(teacher.path), inputs, out, max_new_tokens=d.max_new_tokens,
                                   batch_size=d.batch_size, chunk_size=d.chunk_size, precision=d.teacher_precision,
                                   device=cfg.training.device)
    else:
        _check_teacher_labels(layout, teacher, version)
        stats = collect_classification(str(teacher.path), inputs, out, top_k=d.top_k, batch_size=d.batch_size,
                                       max_length=cfg.model.max_length, chunk_size=d.chunk_size,
                                       precision=d.teacher_precision, device=cfg.training.device)
    # teacher_version keys the outputs (and the pairs made from them); model_version is the weights' alone.
    return TeacherOutputs(out, stats["teacher_version"], teacher.version, version, stats["precision"], stats["computed"],
                          stats["skipped"], stats["chunks_written"], stats["seconds"], stats["inputs_per_second"])


def _check_teacher_labels(layout: Layout, teacher: Teacher, version: str) -> None:
    """Before any teacher time is spent: a student (and its evaluation) needs the teacher's classes, in order,
    to be the dataset's. A drop that brings a new class is the usual way to get here."""
    from transformers import AutoConfig

    from nexa_core.training.models import label_names

    meta = _inputs_meta(layout, version)
    teacher_labels = label_names(AutoConfig.from_pretrained(teacher.path))
    if teacher_labels != list(meta["labels"]):
        raise NexaError(f"distill.teacher: the teacher's labels {teacher_labels} differ from {meta['labels']}, the "
                        f"labels of dataset {meta['source_dataset_version']} (input set {version}); train the "
                        "teacher on data with exactly these classes, or pin one that has them")


def distillation_pairs(cfg: NexaConfig, layout: Layout, teacher_version: str, version: str) -> DistillationPairs:
    from nexa_core.distill.collect import read_outputs
    from nexa_core.distill.filters import filter_pairs

    inputs = _inputs_frame(layout, version)
    outputs = read_outputs(outputs_dir(layout, teacher_version), inputs["input_id"])
    joined = inputs.merge(outputs, on="input_id", how="inner")
    if len(joined) < len(inputs):
        raise NexaError(f"teacher outputs for inputs {version} are incomplete ({len(joined)}/{len(inputs)}); "
                        "materialize teacher_outputs first")
    kept, drops = filter_pairs(joined, cfg.distill.filters, cfg.distill.kind)
    folder = layout.distill_dir / "distillation_pairs" / teacher_version / version
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".pairs.parquet.tmp"
    kept.to_parquet(tmp, index=False)
    tmp.replace(folder / "pairs.parquet")
    info = {"kept": len(kept), "total": len(joined), "drops": drops, "teacher_version": teacher_version,
            "inputs_version": version, "path": str(folder / "pairs.parquet")}
    atomic_write_json(folder / "pairs.json", info)
    return DistillationPairs(folder / "pairs.parquet", len(kept), len(joined), drops, teacher_version, version)


def stored_pairs(layout: Layout, teacher_version: str, version: str) -> DistillationPairs:
    """The pairs an earlier `distillation_pairs` call stored (what `nexa distill --step student` trains on)."""
    info = read_json(layout.distill_dir / "distillation_pairs" / teacher_version / version / "pairs.json")
    return DistillationPairs(Path(info["path"]), info["kept"], info["total"], info["drops"], teacher_version, version)


def student_model(cfg: NexaConfig, layout: Layout, teacher: Teacher, pairs: DistillationPairs,
                  storage: StorageSettings | None = None, launcher=None) -> TrainedModel:
    """Initialise the student from the teacher's layers and train it on the pairs with the KD loss (a classifier
    student under torchrun through `launcher` when training.distributed asks for several processes).

    The student validates and is tested on the dataset its input set came from (`dataset` in the result)."""
    from nexa_core.distill.student import make_student
    from nexa_core.tracking.distillation import nested_in_distillation
    from nexa_core.training.record import update_record

    d = cfg.distill
    dataset = inputs_source(layout, pairs.inputs_version)
    init = layout.scratch / "students" / f"{teacher.version}-L{d.student_layers}"
    if not (init / "config.json").is_file():
        make_student(str(teacher.path), init, d.student_layers, causal_lm=d.kind == "causal_lm")
    parents = _student_parents(cfg, layout, teacher, pairs, init, dataset.version)
    if d.kind == "causal_lm":
        from nexa_core.training.parents import training_lineage
        from nexa_core.training.run import record_environment

        with claim_run(cfg, dataset.version, layout, name=f"{cfg.name}-student",
                       init_from=str(init), pairs=str(pairs.path), kd=None) as claim, \
                nested_in_distillation(cfg, pairs.teacher_version, pairs.inputs_version):
            run_id = claim.run_id
            update_record(claim.run_dir, lineage=parents)
            # What train() records at its start for a classifier.
            update_record(claim.run_dir, environment_fingerprint=record_environment(claim.run_dir))
            result = _train_causal_tracked(cfg, pairs, init, claim.run_dir, dataset)
            update_record(claim.run_dir, status="complete",
                          lineage=training_lineage(cfg, dataset.path, str(init), claim.run_dir))
        return TrainedModel(run_id, Path(result["final_dir"]), dataset, dict(result.get("train_metrics", {})),
                            int(result.get("global_step", 0)), log_path=result.get("log_path"))
    kd = (d.alpha, d.temperature)
    with claim_run(cfg, dataset.version, layout, name=f"{cfg.name}-student",
                   init_from=str(init), pairs=str(pairs.path), kd=kd) as claim, \
            nested_in_distillation(cfg, pairs.teacher_version, pairs.inputs_version):  # the student's MLflow parent
        update_record(claim.run_dir, lineage=parents)  # train() keeps these and adds the data, model and code
        result = train_run(cfg, dataset.path, claim.run_id, layout, init_from=str(init), pairs=pairs.path, kd=kd,
                           storage=storage, launcher=launcher)
    return TrainedModel.from_result(result, dataset)


def _student_parents(cfg: NexaConfig, layout: Layout, teacher: Teacher, pairs: DistillationPairs, init: Path,
                     dataset_version: str) -> dict:
    from nexa_core.data.names import inputs_dir
    from nexa_core.distill.parents import student_lineage

    return student_lineage(cfg, teacher, pairs, init, outputs_dir(layout, pairs.teacher_version),
                           inputs_dir(layout.distill_dir, pairs.inputs_version), dataset_version)


def _train_causal_tracked(cfg: NexaConfig, pairs: DistillationPairs, init: Path, run_dir: Path, dataset) -> dict:
    """The SFT student as an MLflow run like any training run (nested in its distillation run)."""
    from types import SimpleNamespace

    from nexa_core.distill.sft import train_causal_student
    from nexa_core.tracking.callback import MlflowStepCallback
    from nexa_core.training.tracked import close_training_run, open_training_run

    tracker = open_training_run(cfg, run_dir, run_dir.name, {"version": dataset.version, "source": dataset.source},
                                str(init), student=True)
    try:
        result = train_causal_student(cfg, pairs.path, init, run_dir, callbacks=[MlflowStepCallback(tracker)])
    except BaseException as err:
        close_training_run(tracker, run_dir, error=err)
        raise
    close_training_run(tracker, run_dir, SimpleNamespace(train_metrics=result.get("train_metrics", {}), best_eval={},
                                                         global_step=result.get("global_step", 0)))
    return result


def compare_models(cfg: NexaConfig, layout: Layout, teacher: Teacher, student: TrainedModel) -> EvaluationReport:
    """Teacher and student on the same test split (the student's dataset): quality, agreement, size, latency.
    The report is the student's (its metrics.json), with the side-by-side comparison attached."""
    from nexa_core.distill.compare import side_by_side, side_by_side_generation

    dataset = student.dataset
    if cfg.distill.kind == "causal_lm":
        report = side_by_side_generation(teacher.path, student.final_dir, Path(dataset.path),
                                         layout.run_dir(student.run_id), template=cfg.distill.prompt_template,
                                         max_new_tokens=cfg.distill.max_new_tokens,
                                         samples=cfg.data.eval_samples or 64, device=cfg.training.device)
    else:
        report = side_by_side(teacher.path, student.final_dir, Path(dataset.path), layout.run_dir(student.run_id),
                              batch_size=cfg.evaluation.batch_size, max_length=cfg.model.max_length,
                              device=cfg.training.device,
                              precisions={"teacher": cfg.distill.teacher_precision, "student": cfg.training.precision})
    comparison = {k: v for k, v in report.items() if k != "student_report"}
    return EvaluationReport(student.run_id, report["student_report"], comparison=comparison)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
