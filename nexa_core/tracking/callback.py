"""The Trainer callback that streams a run's time series to its MLflow run: per logging step the loss, smoothed
loss (`loss_ema`, added to the log by SmoothedLossLog), learning rate, samples/s and tokens/s (ThroughputLog), and
every validation's scores. Rank 0 only: under torchrun the other workers log nothing.

Points are buffered and sent in one batch every `flush_seconds` (and at each evaluation and at the end), so the
tracking server costs one request per interval, not per step."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from nexa_core.tracking.tracker import NullTracker

SKIP = ("epoch", "total_flos")  # position (the step is the x axis) and a count no one plots


class MlflowStepCallback(TrainerCallback):
    def __init__(self, tracker: NullTracker, flush_seconds: float = 5.0):
        self.tracker, self.flush_seconds = tracker, flush_seconds
        self.points: list[tuple[str, float, int]] = []
        self.last_flush = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        step = state.global_step
        self.points += [(k, float(v), step) for k, v in logs.items()
                        if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if any(k.startswith("eval_") for k in logs) or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.flush()

    def flush(self) -> None:
        points, self.points = self.points, []
        self.last_flush = time.monotonic()
        if points:
            self.tracker.log_metric_points(points)
