"""Student vs teacher on the demo test split: accuracy ratio and inference speed-up.

Run after `make run` (which trains both); this re-measures in one process so the two models share the
machine's state:  .venv/bin/python bench/distill_quality.py [--config configs/default.yaml]
Targets: accuracy ratio >= 0.95 with the student >= 2x faster.
"""

from __future__ import annotations

import argparse
import json
import sys

from nexa_core.common.layout import Layout
from nexa_core.config import load_config
from nexa_core.data import dataset_for
from nexa_core.distill import pipeline
from nexa_core.training.handoff import TrainedModel


def latest_student(layout: Layout, name: str, dataset) -> TrainedModel:
    """The newest finished student, to be scored on `dataset` (the recipe's own test split)."""
    runs = sorted(p for p in layout.runs_dir.glob(f"{name}-student_*") if (p / "final" / "config.json").is_file())
    if not runs:
        sys.exit(f"no finished student run under {layout.runs_dir}; run `make run` first")
    return TrainedModel(runs[-1].name, runs[-1] / "final", dataset, {}, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    args = parser.parse_args()
    cfg = load_config(args.config)
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    teacher = pipeline.teacher_model(cfg, layout, dataset)  # reuses the trained teacher, never retrains it here
    if teacher.trained:
        print("note: the teacher was trained just now (no earlier run found)")
    student = latest_student(layout, cfg.name, dataset)
    c = pipeline.compare_models(cfg, layout, teacher, student).comparison
    print(json.dumps(c, indent=2))
    print(f"teacher {teacher.path}\nstudent {student.final_dir}")
    print(f"student/teacher accuracy = {c['accuracy_ratio']:.3f} (target >= 0.95)")
    print(f"student latency speed-up (batch 1) = {c['latency_speedup']:.2f}x (target >= 2.0x)")
    print(f"student throughput speed-up (batch {cfg.evaluation.batch_size}) = {c['throughput_speedup']:.2f}x")


if __name__ == "__main__":
    main()
