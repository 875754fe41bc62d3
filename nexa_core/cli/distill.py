"""`nexa distill`: the distillation pipeline, whole or one step at a time (same functions as the assets).

The student step also records what the `student_evaluation` asset records: the comparison with its teacher,
the manifest, and the champion/challenger decision (`promotion.json`) that `nexa deploy` then enforces."""

from __future__ import annotations

import json
from dataclasses import asdict

from nexa_core.common.layout import Layout
from nexa_core.config import load_config

STEPS = ("teacher", "inputs", "outputs", "pairs", "student")


def cmd_distill(args) -> None:
    from nexa_core.data.prepare import dataset_for
    from nexa_core.distill import pipeline as dp
    from nexa_core.release import steps
    from nexa_core.release.promotion import decide_for_student
    from nexa_core.training.preflight import check_distill

    cfg = load_config(args.config, args.override)
    layout = Layout.from_storage(cfg.storage)
    check_distill(cfg, dp.teacher_source(cfg, layout))  # before the dataset version, teacher run or outputs are written
    version = args.inputs_version or cfg.distill.inputs_version
    wanted = STEPS if args.step == "all" else (args.step,)
    dataset = dataset_for(cfg, layout)
    teacher = dp.teacher_model(cfg, layout, dataset)
    # Each step's hand-off, field by field (the same values the assets pass on).
    out: dict = {"teacher": asdict(teacher)}
    if "inputs" in wanted:
        out["inputs"] = asdict(dp.teacher_inputs(cfg, layout, dataset, version))
    if "outputs" in wanted:
        out["outputs"] = asdict(dp.teacher_outputs(cfg, layout, teacher, version))
    if "pairs" in wanted:
        out["pairs"] = asdict(dp.distillation_pairs(cfg, layout, dp.labels_version(cfg, teacher), version))
    if "student" in wanted:
        pairs = dp.stored_pairs(layout, dp.labels_version(cfg, teacher), version)
        student = dp.student_model(cfg, layout, teacher, pairs)
        out["student"] = {"run_id": student.run_id, "final_dir": str(student.final_dir),
                          "global_step": student.global_step}
        if cfg.distill.kind == "classifier":
            report = dp.compare_models(cfg, layout, teacher, student)
            out["comparison"] = report.comparison
            out["promotion"] = decide_for_student(cfg, layout, student, report, version)
            out["manifest"] = str(steps.record_manifest(cfg, student.run_id, layout, student.dataset, report.values,
                                                        student.train_metrics))
    print(json.dumps(out, indent=2, default=str))


def add_parser(sub, with_config) -> None:
    p = with_config(sub.add_parser("distill", help="teacher -> inputs -> outputs -> pairs -> student"))
    p.add_argument("--step", choices=("all", *STEPS), default="all", help="run one step (earlier ones must exist)")
    p.add_argument("--inputs-version", help="the teacher-input set to use (default: distill.inputs_version)")
    p.set_defaults(fn=cmd_distill)
