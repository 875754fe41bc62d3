"""TensorBoard event files per run, in `runs/<run_id>/tensorboard/`: `tensorboard --logdir <durable>/runs` lists
every run and charts its loss, smoothed loss, learning rate, throughput and evaluation metrics.

Our own callback rather than transformers' `TensorBoardCallback`: that one picks its folder from the
TENSORBOARD_LOGGING_DIR environment variable, and it writes the TrainingArguments as text. This one writes where it is
told, the scrubbed config, and on resume marks the step training restarts from, so TensorBoard drops the points the
interrupted attempt logged past its checkpoint instead of drawing two lines over the same steps."""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from nexa_core.tracking.series import scalars


class TensorBoardLog(TrainerCallback):
    def __init__(self, log_dir: str | Path, params: dict[str, str] | None = None):
        self.log_dir = Path(log_dir)
        self.params = params or {}
        self.writer = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run restarts after its checkpoint's step: a purge step makes TensorBoard discard what the
        # earlier attempt wrote from there on (it is logged again). A fresh run has nothing to discard.
        purge = state.global_step + 1 if state.global_step else None
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)
        if self.params and not state.global_step:
            self.writer.add_text("config", config_table(self.params), 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.writer is None or not state.is_world_process_zero:
            return
        for name, value in scalars(logs).items():
            self.writer.add_scalar(name, value, state.global_step)
        self.writer.flush()  # a crash loses nothing already logged (the writer otherwise flushes every 2 min)

    def on_train_end(self, args, state, control, **kwargs):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def config_table(params: dict[str, str]) -> str:
    """The config as a Markdown table (TensorBoard's text tab renders Markdown)."""
    rows = [f"| {k} | {str(v).replace('|', '/')} |" for k, v in params.items()]
    return "\n".join(["| setting | value |", "|---|---|", *rows])
