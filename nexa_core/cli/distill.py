"""`nexa distill`: the distillation pipeline, whole or one step at a time (same functions as the assets)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from nexa_core.config import load_config
from nexa_core.common.layout import Layout

STEPS = ("teacher", "inputs", "outputs", "pairs", "student")


def cmd_distill(args) -> None:
    from nexa_core.data import prepare
    from nexa_core.release import steps
    from nexa_core.distill import pipeline as dp

    cfg = load_config(args.config, args.override)
    layout = Layout.from_storage(cfg.storage)
    version = args.inputs_version or cfg.distill.inputs_version
    wanted = STEPS if args.step == "all" else (args.step,)
    dataset = prepare(cfg, layout)
    teacher = dp.teacher_model(cfg, layout, dataset)
    out: dict = {"teacher": {k: teacher[k] for k in ("path", "run_id", "version", "trained")}}
    if "inputs" in wanted:
        out["inputs"] = dp.teacher_inputs(cfg, layout, dataset, version)
    if "outputs" in wanted:
        out["outputs"] = dp.teacher_outputs(cfg, layout, teacher, version)
    if "pairs" in wanted:
        out["pairs"] = dp.distillation_pairs(cfg, layout, dp.labels_version(cfg, teacher), version)
    if "student" in wanted:
        pairs = dp.read_json(layout.distill_dir / "distillation_pairs" / dp.labels_version(cfg, teacher) / version
                             / "pairs.json")
        student = dp.student_model(cfg, layout, teacher, pairs)
        out["student"] = {k: student[k] for k in ("run_id", "final_dir", "global_step")}
        if cfg.distill.kind == "classifier":
            report = dp.compare_models(cfg, layout, teacher, student)
            out["comparison"] = {k: v for k, v in report.items() if k != "student_report"}
            used = SimpleNamespace(**student["dataset"])  # the input set's dataset (a drop version for drops-*)
            out["manifest"] = str(steps.record_manifest(cfg, student["run_id"], layout, used,
                                                        report["student_report"], student["train_metrics"]))
    print(json.dumps(out, indent=2, default=str))


def add_parser(sub, with_config) -> None:
    p = with_config(sub.add_parser("distill", help="teacher -> inputs -> outputs -> pairs -> student"))
    p.add_argument("--step", choices=("all", *STEPS), default="all", help="run one step (earlier ones must exist)")
    p.add_argument("--inputs-version", help="the teacher-input set to use (default: distill.inputs_version)")
    p.set_defaults(fn=cmd_distill)
