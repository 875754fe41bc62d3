"""Trainer callbacks: EMA-smoothed loss and a JSONL log that survives crashes and resumes."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


class SmoothedLossLog(TrainerCallback, ExportableState):
    """Appends every Trainer log (raw loss, lr, eval metrics) plus `loss_ema` to a JSONL file.

    The file is the run's time series. The EMA is callback state: the Trainer saves `state()` in each
    checkpoint's trainer_state.json ("stateful_callbacks") and, with `restore_callback_states_from_checkpoint`,
    rebuilds this callback from it on resume. At train begin the log drops entries past the step training
    starts from, so a resumed run logs what an uninterrupted one would.
    """

    def __init__(self, path: str | Path, smoothing: float):
        self.path = Path(path)
        self.smoothing = smoothing
        self.ema: float | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def state(self) -> dict:
        # Plain JSON: the Trainer writes it into trainer_state.json and passes "args" back to __init__.
        return {"args": {"path": str(self.path), "smoothing": self.smoothing}, "attributes": {"ema": self.ema}}

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        # global_step is the resumed checkpoint's step (0 on a fresh start): later entries were never
        # part of the checkpointed run and are logged again as training redoes those steps.
        kept = [r for r in read_log(self.path) if r.get("step", 0) <= state.global_step] if state.global_step else []
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        # total_flos (the final record) is left out: the Trainer's printer pops it before a callback
        # restored from a checkpoint sees the log, so only uninterrupted runs would have it; run.json keeps it.
        record = {"step": state.global_step, "epoch": state.epoch, **{k: v for k, v in logs.items() if k != "total_flos"}}
        if "loss" in logs:
            loss = float(logs["loss"])
            self.ema = loss if self.ema is None else self.smoothing * self.ema + (1 - self.smoothing) * loss
            # Into `logs` too: the loggers after this callback (TensorBoard, W&B, MLflow) chart the smoothed loss.
            record["loss_ema"] = logs["loss_ema"] = self.ema
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")


def read_log(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a crash ends the usable log
    return records
