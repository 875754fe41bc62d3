"""`TrainedModel`: what a finished training run hands to evaluation and release (fine-tuned model or student)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexa_core.data.dataset import PreparedDataset


@dataclass(frozen=True)
class TrainedModel:
    run_id: str
    final_dir: Path  # the saved best model (weights, tokenizer)
    dataset: PreparedDataset  # validated and tested on this version; the manifest records it
    train_metrics: dict[str, float]
    global_step: int
    best_checkpoint: str | None = None
    resumed_from: str | None = None
    best_eval: dict[str, float] = field(default_factory=dict)  # validation metrics of the best checkpoint
    log_path: str | None = None  # JSONL training log (loss, smoothed loss, validation)

    @property
    def run_dir(self) -> Path:
        return self.final_dir.parent

    @classmethod
    def from_result(cls, result, dataset: PreparedDataset) -> TrainedModel:
        """From the trainer's `TrainResult` (nexa_core/training/run.py)."""
        return cls(run_id=result.run_id, final_dir=Path(result.final_dir), dataset=dataset,
                   train_metrics=dict(result.train_metrics), global_step=result.global_step,
                   best_checkpoint=result.best_checkpoint, resumed_from=result.resumed_from,
                   best_eval=dict(result.best_eval), log_path=result.log_path)

    def metadata(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "run_dir": self.run_dir, "final_dir": self.final_dir,
                "dataset_version": self.dataset.version, "global_step": self.global_step,
                "best_checkpoint": str(self.best_checkpoint), "resumed_from": str(self.resumed_from),
                **self.train_metrics, **{f"best_validation_{k}": v for k, v in self.best_eval.items()}}
