"""Throughput, memory and MFU into the training time series (the JSONL beside the run).

`BatchCounter` wraps the data collator and counts rows and real (non-padding) tokens on the CPU as
batches are built: no GPU sync per step, unlike reading a device tensor back. `ThroughputLog` turns the
counts between two training logs into samples/s and tokens/s, adds peak GPU memory (CUDA) or the
process's RSS (CPU) and, on a GPU whose peak is known, model FLOPs utilisation. It writes into the log
record before `SmoothedLossLog` appends it, so one line holds loss, smoothed loss, lr and throughput.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback

from nexa_core.telemetry.flops import mfu, model_shape, peak_flops


class BatchCounter:
    def __init__(self, collator):
        self.collator = collator
        self.samples = 0
        self.tokens = 0

    def __call__(self, features):
        batch = self.collator(features)
        mask = batch.get("attention_mask")
        ids = batch.get("input_ids")
        self.samples += len(features)
        self.tokens += int(mask.sum()) if mask is not None else (ids.numel() if ids is not None else 0)
        return batch


class ThroughputLog(TrainerCallback):
    def __init__(self, counter: BatchCounter, peak: float | None = None, clock=time.perf_counter):
        self.counter, self.clock = counter, clock
        self.peak = peak  # FLOP/s of one device; None: looked up from the CUDA device name, none on CPU
        self.shape: tuple[int, int, int] | None = None
        self._mark: tuple[float, int, int] | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        import torch

        if self.peak is None and torch.cuda.is_available():
            self.peak = peak_flops(torch.cuda.get_device_name())
            torch.cuda.reset_peak_memory_stats()
        if model is not None:
            self.shape = model_shape(model)
        self._restart()

    def _restart(self) -> None:
        # Evaluation batches go through the same collator, and evaluation and checkpoint saves take time
        # that is not training: the next window starts after them.
        self._mark = (self.clock(), self.counter.samples, self.counter.tokens)

    def on_evaluate(self, args, state, control, **kwargs):
        self._restart()

    def on_save(self, args, state, control, **kwargs):
        self._restart()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or self._mark is None:
            return  # eval and end-of-training summaries carry their own speed metrics
        now, samples, tokens = self.clock(), self.counter.samples, self.counter.tokens
        t0, s0, k0 = self._mark
        self._mark = (now, samples, tokens)
        elapsed = now - t0
        if elapsed <= 0 or samples <= s0:
            return  # no batch collated since the mark (the loader prefetches one ahead): no rate, not a wrong one
        rate_s, rate_t = (samples - s0) / elapsed, (tokens - k0) / elapsed
        logs["samples_per_second"] = rate_s
        logs["tokens_per_second"] = rate_t
        logs.update(memory_figures())
        if self.peak and self.shape:
            logs["mfu"] = mfu(rate_t, (tokens - k0) / (samples - s0), self.shape, self.peak)


def memory_figures() -> dict[str, float]:
    import torch

    if torch.cuda.is_available():
        return {"gpu_memory_allocated_mb": torch.cuda.memory_allocated() / 2**20,
                "gpu_memory_peak_mb": torch.cuda.max_memory_allocated() / 2**20}
    from nexa_core.telemetry.host import _rss_mb

    rss = _rss_mb()
    return {} if rss is None else {"process_rss_mb": rss}
