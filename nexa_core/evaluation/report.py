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
        per_class = {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
                     for name, scores in (self.values.get("per_class") or {}).items()}
        out: dict[str, Any] = {"run_id": self.run_id, **self.scores, "num_examples": self.values.get("num_examples"),
                               "metrics_path": self.metrics_path}
        if per_class:
            out["per_class"] = per_class
        if self.values.get("predictions_path"):
            out["predictions_path"] = Path(self.values["predictions_path"])
        if self.comparison:
            out.update({k: v for k, v in self.comparison.items() if isinstance(v, (int, float))})
        if self.promotion:
            out.update(champion_run_id=str(self.promotion["champion_run_id"]), promote=self.promotion["promote"],
                       promotion_gated=self.promotion["gated"], promotion=self.promotion)
        return {k: v for k, v in out.items() if v is not None}
