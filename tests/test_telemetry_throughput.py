"""Throughput and MFU callback: counts from the collator, rates per logging window, FLOPs per token."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from nexa_core.telemetry.flops import flops_per_token, mfu, peak_flops
from nexa_core.training.throughput import BatchCounter, ThroughputLog


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def _collate(features):
    width = max(len(f) for f in features)
    mask = torch.tensor([[1] * len(f) + [0] * (width - len(f)) for f in features])
    return {"input_ids": mask.clone(), "attention_mask": mask}


def test_flops_per_token_and_peak_table():
    # 6N + 12 L H T: N = 110M, L = 12, H = 768, T = 128
    assert flops_per_token(110_000_000, 12, 768, 128) == 6 * 110e6 + 12 * 12 * 768 * 128
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12 and peak_flops("cpu") is None and peak_flops(None) is None
    # 1e5 tokens/s on a 1B-parameter model with short sequences ~ 6e14 FLOP/s ~ 61% of an H100
    assert mfu(1e5, 0.0, (1_000_000_000, 0, 0), 989e12) == pytest.approx(6e14 / 989e12)


def test_window_rates_skip_evaluation_and_add_mfu_when_a_peak_is_known():
    counter, clock = BatchCounter(_collate), Clock()
    model = torch.nn.Module()
    model.config = SimpleNamespace(num_hidden_layers=2, hidden_size=4)
    model.w = torch.nn.Parameter(torch.zeros(10))  # N = 10
    cb = ThroughputLog(counter, peak=1e3, clock=clock)
    cb.on_train_begin(None, None, None, model=model)
    counter([[1, 2, 3], [1]])  # 2 samples, 4 real tokens (padding not counted)
    counter([[1, 2], [1, 2]])  # 2 samples, 4 tokens
    clock.now = 2.0
    logs = {"loss": 0.5, "learning_rate": 1e-4}
    cb.on_log(None, None, None, logs=logs)
    assert logs["samples_per_second"] == 2.0 and logs["tokens_per_second"] == 4.0
    assert logs["process_rss_mb"] > 0 or "gpu_memory_peak_mb" in logs
    # FLOPs/token = 6*10 + 12*2*4*(8 tokens / 4 samples) = 60 + 192 = 252; 4 tok/s * 252 / 1e3
    assert logs["mfu"] == pytest.approx(4 * 252 / 1e3)
    counter([[1] * 50] * 8)  # an evaluation pass goes through the same collator...
    clock.now = 10.0
    cb.on_evaluate(None, None, None)  # ...and is left out of the next window
    counter([[1, 2, 3, 4]])
    clock.now = 11.0
    logs = {"loss": 0.4}
    cb.on_log(None, None, None, logs=logs)
    assert logs["samples_per_second"] == 1.0 and logs["tokens_per_second"] == 4.0
    eval_logs = {"eval_loss": 0.3}
    cb.on_log(None, None, None, logs=eval_logs)
    assert eval_logs == {"eval_loss": 0.3}
