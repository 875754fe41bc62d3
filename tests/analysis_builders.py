"""Three crafted runs for the leaderboard tests, with every figure chosen so the expected values are worked by hand.

    run                           line     acc   f1    loss  logged train losses   runtime     telemetry (gpu_h, kWh, $)
    tiny_20260101_100000          trained  0.8   0.75  0.5   1.0, 0.6, 0.5          30 s wall   train (.5, .2, 1) + evaluate (.25, -, .5)
    tiny_20260102_100000          trained  0.9   0.85  0.3   0.8, 0.4               60 s wall   train (1.0, -, 2.0)
    tiny-student_20260103_100000  student  0.7   0.65  0.4   (no log)               10 s (HF)   (none)

Run 2 was deployed, then the student replaced it: the student is deployed now, run 2 was deployed once, run 1 never.
Beside them: a corrupt manifest (skipped with a warning) and the infra report (not a manifest, ignored).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nexa_core.common.layout import Layout

RUN1, RUN2, STUDENT = "tiny_20260101_100000", "tiny_20260102_100000", "tiny-student_20260103_100000"
BROKEN = "broken_20260104_100000"
TINY_MODEL, TEACHER_MODEL = "BertForSequenceClassification (from tiny)", "BertForSequenceClassification (from teacher)"


def _json(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) + "\n")


def _run(layout: Layout, run_id: str, *, metrics: dict, day: int, version: str, model: str, record: dict,
         losses: list[float], telemetry: dict[str, dict]) -> None:
    run_dir = layout.run_dir(run_id)
    _json(layout.manifest_path(run_id), {
        "run_id": run_id, "config": str(run_dir / "config.yaml"), "run_dir": str(run_dir), "metrics": metrics,
        "checkpoint": str(run_dir / "final"), "created_at": f"2026-01-0{day}T10:00:00+00:00", "version": version,
        "dataset": f"reviews.csv@{version}", "model": model})
    _json(run_dir / "run.json", {"run_id": run_id, "status": "complete", "dataset_version": version, **record})
    if losses:
        log = run_dir / "logs" / "train_log.jsonl"
        log.parent.mkdir(parents=True)
        records = [{"step": 2 * (i + 1), "loss": v, "loss_ema": v, "learning_rate": 0.001} for i, v in enumerate(losses)]
        records.insert(1, {"step": 3, "eval_loss": 0.9, "eval_accuracy": 0.5})  # evaluations carry no training loss
        log.write_text("".join(json.dumps(r) + "\n" for r in records))
    for stage, figures in telemetry.items():
        _json(run_dir / "telemetry" / f"{stage}.json", {"stage": stage, "source": "nvml", "gpu_count": 1, **figures})


def craft_runs(root: Path) -> Layout:
    layout = Layout(scratch=root / "scratch", durable=root / "durable", shared=root / "shared")
    _run(layout, RUN1, metrics={"accuracy": 0.8, "macro_f1": 0.75, "loss": 0.5, "train_loss": 0.6, "f1_neg": 0.7},
         day=1, version="v1", model=TINY_MODEL, losses=[1.0, 0.6, 0.5],
         record={"model": "tiny", "train": {"global_step": 6, "train_metrics": {"wall_seconds": 30.0, "train_runtime": 28.0}}},
         telemetry={"train": {"gpu_hours": 0.5, "energy_kwh": 0.2, "cost_usd": 1.0},
                    "evaluate": {"gpu_hours": 0.25, "energy_kwh": None, "cost_usd": 0.5}})
    _run(layout, RUN2, metrics={"accuracy": 0.9, "macro_f1": 0.85, "loss": 0.3}, day=2, version="v1", model=TINY_MODEL,
         losses=[0.8, 0.4], record={"model": "tiny", "train": {"global_step": 4, "train_metrics": {"wall_seconds": 60.0}}},
         telemetry={"train": {"gpu_hours": 1.0, "energy_kwh": None, "cost_usd": 2.0}})
    _run(layout, STUDENT, metrics={"accuracy": 0.7, "macro_f1": 0.65, "loss": 0.4}, day=3, version="v2",
         model=TEACHER_MODEL, losses=[], telemetry={},
         record={"model": "teacher", "train": {"global_step": 2, "train_metrics": {"train_runtime": 10.0}}})
    layout.manifest_path(BROKEN).write_text("{not json")
    _json(layout.manifests_dir / "infra_report.json", {"fingerprint": "abc"})
    deploy_dir = layout.deploy_dir
    deploy_dir.mkdir(parents=True)
    history = [{"action": "deploy", "run_id": RUN2, "previous_run_id": None, "deployed_at": "2026-01-02T11:00:00Z",
                "by": "CLI"},
               {"action": "deploy", "run_id": STUDENT, "previous_run_id": RUN2, "deployed_at": "2026-01-03T11:00:00Z",
                "by": "Dagster", "line": "student"}]
    (deploy_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    os.symlink(f"releases/{STUDENT}/model", deploy_dir / "current_model")
    return layout
