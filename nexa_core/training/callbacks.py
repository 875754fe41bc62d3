"""Trainer callbacks: EMA-smoothed loss and a JSONL log that survives crashes and resumes."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback


class SmoothedLossLog(TrainerCallback):
    """Appends every Trainer log (raw loss, lr, eval metrics) plus `loss_ema` to a JSONL file.

    The file is the run's time series; on resume, entries past the checkpoint are dropped and the EMA
    continues from the last kept value, so a resumed run logs exactly what an uninterrupted one would.
    """

    def __init__(self, path: Path, smoothing: float, resume_step: int = 0):
        self.path = Path(path)
        self.smoothing = smoothing
        self.ema: float | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step] if resume_step else []
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        for record in kept:
            if "loss_ema" in record:
                self.ema = record["loss_ema"]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        if "loss" in logs:
            loss = float(logs["loss"])
            self.ema = loss if self.ema is None else self.smoothing * self.ema + (1 - self.smoothing) * loss
            record["loss_ema"] = self.ema
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
