"""Metrics under DDP: the logged losses are means over ranks (a 2-process run logs what one process logs on the
same global batch), and throughput (samples/s, tokens/s, MFU) counts every rank."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nexa_core.common.layout import Layout
from nexa_core.config import validate_config
from nexa_core.data import dataset_for
from nexa_core.training.steps import train_run
from tests.conftest import tiny_recipe


def _log(tiny_model, tiny_csv, root: Path, world_size: int, batch_size: int, grad_accumulation: int = 1) -> list[dict]:
    # Same global batch either way: no dropout, one seed, and a length-grouped order sized to the global batch,
    # whose per-device batches accelerate deals out round-robin to the ranks: DDP's step k trains on the rows
    # one process's step k does.
    recipe = tiny_recipe(tiny_model, tiny_csv, root, batch_size=batch_size, grad_accumulation=grad_accumulation,
                         max_steps=4, logging_steps=1,
                         checkpoint={"every_steps": 2, "keep": 1},
                         distributed={"world_size": world_size, "seed": 7, "env": {"OMP_NUM_THREADS": "1"}})
    recipe["model"]["dropout"] = 0.0
    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    result = train_run(cfg, dataset_for(cfg, layout).path, "tiny_20260101_000000", layout)
    return [json.loads(line) for line in Path(result.log_path).read_text().splitlines()]


@pytest.mark.slow
def test_ddp_logs_the_single_process_losses_on_the_same_global_batch(tiny_model, tiny_csv, tmp_path):
    one = _log(tiny_model, tiny_csv, tmp_path / "one", world_size=1, batch_size=10)
    ddp = _log(tiny_model, tiny_csv, tmp_path / "ddp", world_size=2, batch_size=5)
    # Batches of 5 and 10: HF's length grouping sorts within megabatches of min(50, rows // (4 * batch)) batches,
    # which on these 192 rows hold 45 rows for 5 and 40 for 10 (for 8 and 16 both would hold 48, hiding a
    # sampler sized to the per-device batch). Gradient accumulation over the same 10 rows logs (and trains on) the same mean loss too.
    accumulated = _log(tiny_model, tiny_csv, tmp_path / "ga", world_size=1, batch_size=5, grad_accumulation=2)
    for other in (ddp, accumulated):
        for key in ("loss", "eval_loss"):
            got = {r["step"]: r[key] for r in other if key in r}
            want = {r["step"]: r[key] for r in one if key in r}
            assert sorted(got) == sorted(want) and len(got) >= 2, key
            for step, value in want.items():
                assert got[step] == pytest.approx(value, rel=1e-4), (key, step)
    # Rank 0 writes the log, with throughput figures from both ranks' batches (tested exactly below).
    assert any("samples_per_second" in r and "tokens_per_second" in r for r in ddp)


def _rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from nexa_core.training.throughput import BatchCounter, ThroughputLog

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    rows = 4 + 2 * rank  # uneven on purpose: 4 rows of 3 tokens on rank 0, 6 on rank 1
    counter = BatchCounter(lambda features: {"attention_mask": _ones(len(features), 3)})
    ticks = iter([0.0, 2.0])
    callback = ThroughputLog(counter, peak=1e12, clock=lambda: next(ticks))
    callback.on_train_begin(None, None, None)
    callback.shape = (1000, 2, 32)
    counter([{}] * rows)
    logs = {"loss": 1.0}
    callback.on_log(None, None, None, logs=logs)
    dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text(json.dumps(logs))


def _ones(rows: int, cols: int):
    import torch

    return torch.ones(rows, cols, dtype=torch.long)


@pytest.mark.slow
def test_throughput_under_ddp_is_global_and_mfu_counts_every_device(tmp_path):
    import torch.multiprocessing as mp

    from nexa_core.telemetry.flops import mfu
    from tests.process_helpers import free_port

    out = tmp_path / "logs.json"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_rank, args=(free_port(), str(out)), nprocs=2, join=True)
    logs = json.loads(out.read_text())
    # 10 rows and 30 tokens over both ranks in 2 seconds; MFU against the peak of both devices.
    assert logs["samples_per_second"] == pytest.approx(5.0)
    assert logs["tokens_per_second"] == pytest.approx(15.0)
    assert logs["mfu"] == pytest.approx(mfu(15.0, 3.0, (1000, 2, 32), 2e12))
