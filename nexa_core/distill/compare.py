"""Teacher vs student on the same test split: accuracy, macro-F1, agreement, parameters and latency."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from nexa_core.common.atomic import atomic_write_json

# Each role's precision setting: the teacher infers as it labelled its outputs, the student as it was trained.
PRECISION_FIELDS = {"teacher": "distill.teacher_precision", "student": "training.precision"}


def measure_latency(model_dirs: dict[str, Path], texts: list[str], max_length: int, batch_size: int, *,
                    device: str = "auto", precisions: dict[str, str] | None = None) -> dict:
    """Median ms per example at batch size 1 (online serving) and examples/s at `batch_size` (offline), on
    `device` (a training.device value) in each role's precision (default fp32).

    The models take turns example by example, so a busy machine slows both alike and the ratio holds.
    """
    import torch

    from nexa_core.evaluation.evaluate import load_for_inference, predict_logits

    precisions = precisions or {}
    models = {role: load_for_inference(d, device, precisions.get(role, "fp32"), PRECISION_FIELDS.get(role, role))
              for role, d in model_dirs.items()}
    single = {role: [] for role in models}
    with torch.inference_mode():
        for model, tokenizer, autocast in models.values():
            predict_logits(model, tokenizer, texts[:8], batch_size, max_length, autocast)  # warm-up
        for text in texts[:64]:
            for role, (model, tokenizer, autocast) in models.items():
                batch = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
                start = time.perf_counter()
                with autocast():
                    model(**batch.to(model.device)).logits.cpu()  # to the host: a GPU has finished the forward
                single[role].append(time.perf_counter() - start)
    best = {role: float("inf") for role in models}
    for _ in range(3):  # alternating rounds, best of each: other load can only slow a round down
        for role, (model, tokenizer, autocast) in models.items():
            start = time.perf_counter()
            predict_logits(model, tokenizer, texts, batch_size, max_length, autocast)
            best[role] = min(best[role], time.perf_counter() - start)
    return {role: {"latency_ms": 1000 * sorted(single[role])[len(single[role]) // 2],
                   "throughput": len(texts) / best[role]} for role in models}


def side_by_side(teacher_dir: Path, student_dir: Path, dataset_dir: Path, out_dir: Path, *,
                 batch_size: int, max_length: int, device: str = "auto",
                 precisions: dict[str, str] | None = None) -> dict:
    """`device`: training.device; `precisions`: role -> precision (distill.teacher_precision, training.precision)."""
    from nexa_core.distill.student import parameter_count
    from nexa_core.evaluation.evaluate import evaluate_model

    precisions = precisions or {}
    reports = {}
    for role, model_dir in (("teacher", teacher_dir), ("student", student_dir)):
        reports[role] = evaluate_model(model_dir, dataset_dir, Path(out_dir) / f"eval_{role}", batch_size=batch_size,
                                       max_length=max_length, save_predictions=True, device=device,
                                       precision=precisions.get(role, "fp32"), precision_field=PRECISION_FIELDS[role])
    preds = {role: pd.read_parquet(r["predictions_path"])["predicted"] for role, r in reports.items()}
    texts = pd.read_parquet(Path(dataset_dir) / "test.parquet")["text"].tolist()
    speed = measure_latency({"teacher": teacher_dir, "student": student_dir}, texts, max_length, batch_size,
                            device=device, precisions=precisions)
    summary = {
        **{f"{role}_{k}": reports[role][k] for role in reports for k in ("accuracy", "macro_f1", "loss")},
        **{f"{role}_{k}": v for role, s in speed.items() for k, v in s.items()},
        "teacher_parameters": parameter_count(teacher_dir),
        "student_parameters": parameter_count(student_dir),
        "agreement": float((preds["teacher"] == preds["student"]).mean()),
        "num_examples": reports["student"]["num_examples"],
    }
    summary["accuracy_ratio"] = summary["student_accuracy"] / max(summary["teacher_accuracy"], 1e-12)
    summary["latency_speedup"] = summary["teacher_latency_ms"] / max(summary["student_latency_ms"], 1e-12)
    summary["throughput_speedup"] = summary["student_throughput"] / max(summary["teacher_throughput"], 1e-12)
    # The student's own metrics.json is what its gates, manifest and package read.
    atomic_write_json(Path(out_dir) / "metrics.json", {**reports["student"], "comparison": summary})
    atomic_write_json(Path(out_dir) / "comparison.json", summary)
    return {**summary, "student_report": reports["student"]}


def generation_latency_ms(model_dir: Path, prompts: list[str], max_new_tokens: int, device: str = "auto") -> float:
    """Median ms to answer one prompt (greedy, batch size 1) on `device` (training.device), model load excluded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nexa_core.training.device import resolve_device

    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    times = []
    with torch.inference_mode():
        for prompt in prompts:
            batch = tokenizer([prompt], return_tensors="pt").to(device)
            start = time.perf_counter()
            model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                           pad_token_id=model.generation_config.eos_token_id).cpu()  # waits for a GPU
            times.append(time.perf_counter() - start)
    times.sort()
    return 1000 * times[len(times) // 2]


def side_by_side_generation(teacher_dir: Path, student_dir: Path, dataset_dir: Path, out_dir: Path, *,
                            template: str, max_new_tokens: int, samples: int, device: str = "auto") -> dict:
    """Causal LMs: greedy completions of both on the test prompts, on `device` (training.device); agreement is
    the exact-match rate."""
    import tempfile

    from nexa_core.distill.collect import collect_generation, read_outputs
    from nexa_core.distill.inputs import input_id
    from nexa_core.distill.student import parameter_count

    texts = pd.read_parquet(Path(dataset_dir) / "test.parquet")["text"].tolist()[:samples]
    prompts = pd.DataFrame({"input_id": [input_id(t) for t in texts], "text": [template.format(text=t) for t in texts]})
    completions, speed = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for role, model_dir in (("teacher", teacher_dir), ("student", student_dir)):
            collect_generation(model_dir, prompts, Path(tmp) / role, max_new_tokens=max_new_tokens,
                               batch_size=16, chunk_size=len(prompts), device=device)
            speed[role] = generation_latency_ms(model_dir, prompts["text"].tolist()[:16], max_new_tokens, device)
            completions[role] = read_outputs(Path(tmp) / role).set_index("input_id")["completion"]
    aligned = completions["teacher"].reindex(completions["student"].index)
    summary = {
        "agreement": float((aligned == completions["student"]).mean()),
        "teacher_latency_ms": speed["teacher"], "student_latency_ms": speed["student"],
        "teacher_parameters": parameter_count(teacher_dir), "student_parameters": parameter_count(student_dir),
        "num_examples": len(prompts),
    }
    summary["latency_speedup"] = summary["teacher_latency_ms"] / max(summary["student_latency_ms"], 1e-12)
    report = {"split": "test", "num_examples": len(prompts), "agreement": summary["agreement"],
              "metrics_path": str(Path(out_dir) / "metrics.json")}
    atomic_write_json(Path(out_dir) / "metrics.json", {**report, "comparison": summary})
    atomic_write_json(Path(out_dir) / "comparison.json", summary)
    return {**summary, "student_report": report}


def summary_line(c: dict) -> str:
    quality = (f"student/teacher accuracy {c['student_accuracy']:.4f}/{c['teacher_accuracy']:.4f} "
               f"(ratio {c['accuracy_ratio']:.3f})" if "student_accuracy" in c else f"agreement {c['agreement']:.3f}")
    return (f"{quality}; latency {c['student_latency_ms']:.2f}/{c['teacher_latency_ms']:.2f} ms "
            f"(student {c['latency_speedup']:.2f}x faster); parameters {c['student_parameters']}/{c['teacher_parameters']}")
