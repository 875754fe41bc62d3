"""What the distillation steps hand each other: the teacher, an input set, its teacher outputs, the filtered pairs.

Each is frozen and has one `metadata()` (plain values: numbers stay numbers, paths stay paths) that the CLI
prints and the Dagster assets turn into materialization metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class Teacher:
    path: Path  # a fine-tuned classifier or causal LM folder
    version: str  # hash of its weights: keys its outputs, so a new teacher never reuses old labels
    run_id: Optional[str]  # the run that trained it here; None for a pinned model
    trained: bool  # trained by this call (False: reused or pinned)
    train_metrics: dict[str, float] = field(default_factory=dict)
    best_eval: dict[str, float] = field(default_factory=dict)  # validation scores of its best checkpoint
    log_path: Optional[Path] = None  # the training log of the run that made it, when it came from one
    trained_by: Optional[str] = None  # that run's id (also for a pinned run's `final/` folder)

    @property
    def no_curve_reason(self) -> Optional[str]:
        """Why there is no training curve to show (None: there is one)."""
        if self.log_path:
            return None
        return (f"pinned teacher {self.path} was not trained by a NexaCompute run (no training log beside it)"
                if self.run_id is None else f"run {self.run_id} left no training log")

    def metadata(self) -> dict[str, Any]:
        from nexa_core.training.handoff import training_figures

        return {**training_figures(self.train_metrics, self.best_eval), "teacher_version": self.version,
                "trained_now": self.trained, "run_id": self.run_id or self.trained_by, "pinned": self.run_id is None,
                "teacher_path": self.path}  # not `path`: the IO manager's entry of that name would hide it


@dataclass(frozen=True)
class InputSet:
    version: str  # the set's name (a teacher_inputs partition)
    path: Path  # its folder (inputs.parquet + inputs.json)
    source_dataset_version: str
    counts: dict[str, int]  # rows by split (train, unlabelled)
    reused: bool

    def metadata(self) -> dict[str, Any]:
        return {"inputs_path": self.path, "reused": self.reused, "dataset_version": self.source_dataset_version,
                **{f"rows_{k}": v for k, v in self.counts.items()}}


@dataclass(frozen=True)
class TeacherOutputs:
    path: Path  # the teacher version's chunk folder
    teacher_version: str  # weights version plus precision (e.g. `<hash>-bf16`): what the pairs are keyed by
    model_version: str  # the weights' version alone
    inputs_version: str
    precision: str
    computed: int  # inputs labelled by this call
    skipped: int  # inputs already labelled by this teacher version (in any input set)
    chunks_written: int
    seconds: float
    inputs_per_second: float
    mlflow_run_id: Optional[str] = None  # the step's MLflow run (nested in the distillation run), when tracked
    mlflow_url: Optional[str] = None

    def metadata(self) -> dict[str, Any]:
        return {"outputs_path": self.path, "teacher_version": self.teacher_version, "precision": self.precision,
                "computed": self.computed, "skipped": self.skipped, "chunks_written": self.chunks_written,
                "seconds": self.seconds, "inputs_per_second": self.inputs_per_second,
                "mlflow_run_id": self.mlflow_run_id}


@dataclass(frozen=True)
class DistillationPairs:
    path: Path  # pairs.parquet
    kept: int
    total: int
    drops: dict[str, int]  # dropped rows by filter reason
    teacher_version: str
    inputs_version: str

    def metadata(self) -> dict[str, Any]:
        return {"pairs_path": self.path, "kept": self.kept, "total": self.total,
                **{f"dropped_{k}": v for k, v in self.drops.items()}}
