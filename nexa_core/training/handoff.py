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
    fast_path: dict = field(default_factory=dict)  # the resolved precision, tf32, optimizer, attention, compile

    @property
    def run_dir(self) -> Path:
        return self.final_dir.parent

    @classmethod
    def from_result(cls, result, dataset: PreparedDataset) -> TrainedModel:
        """From the trainer's `TrainResult` (nexa_core/training/run.py)."""
        return cls(run_id=result.run_id, final_dir=Path(result.final_dir), dataset=dataset,
                   train_metrics=dict(result.train_metrics), global_step=result.global_step,
                   best_checkpoint=result.best_checkpoint, resumed_from=result.resumed_from,
                   best_eval=dict(result.best_eval), log_path=result.log_path,
                   fast_path=dict(getattr(result, "fast_path", None) or {}))

    def metadata(self) -> dict[str, Any]:
        return {**training_figures(self.train_metrics, self.best_eval), "global_step": self.global_step,
                "run_id": self.run_id, "dataset_version": self.dataset.version, "run_dir": self.run_dir,
                "final_dir": self.final_dir, "best_checkpoint": _path(self.best_checkpoint),
                "resumed_from": _path(self.resumed_from), "fast_path": self.fast_path or None}


# The few figures of a training run worth plotting across materializations (quality first, then speed); the
# Trainer's other figures stay readable in one entry.
PLOTTED_TRAIN = ("train_loss", "epoch", "train_samples_per_second", "train_tokens_per_second", "mfu", "wall_seconds")
PLOTTED_VALIDATION = ("accuracy", "macro_f1", "loss")


def training_figures(train_metrics: dict[str, float], best_eval: dict[str, float]) -> dict[str, Any]:
    """A run's final numbers: the best checkpoint's validation scores, the final training loss, and speed."""
    validation = {f"best_validation_{k}": best_eval[k] for k in PLOTTED_VALIDATION if k in best_eval}
    train = {k: train_metrics[k] for k in PLOTTED_TRAIN if k in train_metrics}
    rest = {**{k: v for k, v in train_metrics.items() if k not in PLOTTED_TRAIN},
            **{f"best_validation_{k}": v for k, v in best_eval.items() if k not in PLOTTED_VALIDATION}}
    return {**validation, **train, "other_training_figures": rest or None}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
