"""Mirror the best checkpoint each time training finds a new one, not only at the end."""

from __future__ import annotations

import logging

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class BestCheckpointMirror(TrainerCallback):
    def __init__(self, store, run_id: str):
        self.store, self.run_id, self.mirrored = store, run_id, None

    def on_save(self, args, state, control, **kwargs):
        best = state.best_model_checkpoint
        if state.is_world_process_zero and best and best != self.mirrored:
            # Unchanged files are skipped by checksum, so re-pushing a folder costs little.
            self.store.push(best, f"{self.run_id}/best")
            self.mirrored = best
            log.info("mirrored new best checkpoint %s to %s", best, self.store.describe(f"{self.run_id}/best"))
