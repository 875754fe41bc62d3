"""`EvaluationReport`: a model's test-split evaluation as gates, promotion, the manifest and the UI read it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

QUALITY = ("accuracy", "macro_f1", "loss", "agreement")  # the scores gates and promotion may name


@dataclass(frozen=True)
class EvaluationReport:
    run_id: str
    values: dict[str, Any]  # metrics.json as written: scores, per_class, num_examples, dataset_version, paths
    comparison: Optional[dict[str, Any]] = None  # students: teacher vs student (quality, agreement, speed, size)
    promotion: Optional[dict[str, Any]] = None  # champion/challenger decision, when one was made

    @property
    def scores(self) -> dict[str, float]:
        return {k: self.values[k] for k in QUALITY if isinstance(self.values.get(k), (int, float))}

    @property
    def metrics_path(self) -> Optional[Path]:
        return Path(self.values["metrics_path"]) if self.values.get("metrics_path") else None

    def with_promotion(self, decision: dict[str, Any]) -> EvaluationReport:
        return replace(self, promotion=decision)

    def metadata(self) -> dict[str, Any]:
        """Quality first (the teacher-vs-student table, then the scores), speed, the decision, per-class rows, paths.
        Only the figures worth plotting are numbers; the teacher's own figures live in the table."""
        out: dict[str, Any] = {}
        if self.comparison:
            out["teacher_vs_student"] = comparison_rows(self.comparison)
        out.update(self.scores)
        if self.comparison:
            out.update({k: self.comparison[k] for k in PLOTTED_COMPARISON if k in self.comparison})
        out["num_examples"] = self.values.get("num_examples")
        if self.promotion:
            out.update(promote=self.promotion["promote"], promotion_gated=self.promotion["gated"],
                       champion_run_id=self.promotion["champion_run_id"], promotion=self.promotion)
        out["run_id"] = self.run_id
        per_class = self.values.get("per_class") or {}
        if per_class:
            out["per_class"] = [{"class": name, **scores} for name, scores in per_class.items()]
        out["metrics_path"] = self.metrics_path
        if self.values.get("predictions_path"):
            out["predictions_path"] = Path(self.values["predictions_path"])
        return {k: v for k, v in out.items() if v is not None}


# A student's comparison figures plotted across materializations; the rest are in the teacher-vs-student table.
PLOTTED_COMPARISON = ("agreement", "accuracy_ratio", "latency_speedup", "throughput_speedup", "student_latency_ms")
_ROW_FIGURES = ("accuracy", "macro_f1", "loss", "latency_ms", "throughput", "parameters")


def comparison_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model (teacher, student) of the figures measured for both on the same test split."""
    return [{"model": role, **{k: comparison[f"{role}_{k}"] for k in _ROW_FIGURES
                               if comparison.get(f"{role}_{k}") is not None}}
            for role in ("teacher", "student")]
