"""Throughput, memory and MFU into the training time series (the JSONL beside the run).

`BatchCounter` wraps the data collator and counts rows and real (non-padding) tokens on the CPU as
batches are built: no GPU sync per step, unlike reading a device tensor back. In a loader worker process (GPU
runs load in the background) the counts of a batch travel inside it (`COUNTS`) and the trainer adds them to the
counter in the training process as it takes the batch (`NexaTrainer._prepare_inputs`). `ThroughputLog` turns the
counts between two training logs into samples/s and tokens/s, adds peak GPU memory (CUDA) or the
process's RSS (CPU) and, on a GPU whose peak is known, model FLOPs utilisation. It writes into the log
record before `SmoothedLossLog` appends it, so one line holds loss, smoothed loss, lr and throughput.

Under DDP every rank runs both: each rank's window counts are summed over the ranks at each training log
(every rank logs at the same steps), so samples/s and tokens/s are the whole job's and MFU divides by the
peak of every device. Memory stays rank 0's own.
"""

from __future__ import annotations

import os
import time

from transformers import TrainerCallback

from nexa_core.telemetry.flops import mfu, model_shape, peak_flops

COUNTS = "nexa_batch_counts"  # (rows, real tokens) of a batch collated in a loader worker; popped before the model


class BatchCounter:
    def __init__(self, collator):
        self.collator = collator
        self.samples = 0
        self.tokens = 0
        self._owner = os.getpid()  # a loader worker is a copy in another process: its own counts would be lost

    def __call__(self, features):
        batch = self.collator(features)
        mask = batch.get("attention_mask")
        ids = batch.get("input_ids")
        tokens = int(mask.sum()) if mask is not None else (ids.numel() if ids is not None else 0)
        if os.getpid() == self._owner:
            self.add(len(features), tokens)
        else:  # plain ints: moved to the device as they are, so reading them back costs no sync
            batch[COUNTS] = (len(features), tokens)
        return batch

    def add(self, samples: int, tokens: int) -> None:
        self.samples += int(samples)
        self.tokens += int(tokens)


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
        # Before any early return: every rank must join the sum, or the others wait for it forever.
        (d_samples, d_tokens), ranks = summed_over_ranks(samples - s0, tokens - k0)
        elapsed = now - t0  # rank 0's clock: the ranks step in lockstep, and its record is the one written
        if elapsed <= 0 or d_samples <= 0:
            return  # no batch collated since the mark (the loader prefetches one ahead): no rate, not a wrong one
        rate_s, rate_t = d_samples / elapsed, d_tokens / elapsed
        logs["samples_per_second"] = rate_s
        logs["tokens_per_second"] = rate_t
        logs.update(memory_figures())
        if self.peak and self.shape:
            logs["mfu"] = mfu(rate_t, d_tokens / d_samples, self.shape, self.peak * ranks)


def throughput_summary(records: list[dict]) -> dict[str, float]:
    """The run's training speed from its logged windows: mean real tokens/s and MFU (on a GPU of known peak), and
    the peak GPU memory; what the run's metrics, manifest sidecar and asset metadata carry. Empty without windows."""
    timed = [r for r in records if "tokens_per_second" in r]
    if not timed:
        return {}
    out = {"train_tokens_per_second": sum(r["tokens_per_second"] for r in timed) / len(timed)}
    mfus = [r["mfu"] for r in timed if "mfu" in r]
    if mfus:
        out["mfu"] = sum(mfus) / len(mfus)
    peaks = [r["gpu_memory_peak_mb"] for r in timed if "gpu_memory_peak_mb" in r]
    if peaks:
        out["gpu_memory_peak_mb"] = max(peaks)
    return out


def summed_over_ranks(samples: int, tokens: int) -> tuple[tuple[int, int], int]:
    """(samples, tokens) summed over the DDP ranks, and how many ranks; unchanged in a single process."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return (samples, tokens), 1
    # The default group's backend decides the device: gloo sums CPU tensors, NCCL only CUDA ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    counts = torch.tensor([samples, tokens], dtype=torch.float64, device=device)
    dist.all_reduce(counts)
    return (int(counts[0].item()), int(counts[1].item())), dist.get_world_size()


def memory_figures() -> dict[str, float]:
    import torch

    if torch.cuda.is_available():
        return {"gpu_memory_allocated_mb": torch.cuda.memory_allocated() / 2**20,
                "gpu_memory_peak_mb": torch.cuda.max_memory_allocated() / 2**20}
    from nexa_core.telemetry.host import _rss_mb

    rss = _rss_mb()
    return {} if rss is None else {"process_rss_mb": rss}
