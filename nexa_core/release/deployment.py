"""What `deploy/current_model` serves now, in one summary: `nexa deploy` prints it and the Dagster `current_model`
asset shows it, so the CLI and the UI cannot disagree about the deployment.

The summary is read from the pointer and the history (only promotions that took effect), the release's own
metrics.json (the numbers the model was released with) and the run's promotion decision, if one was made.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from nexa_core.common.layout import Layout
from nexa_core.release import deploy
from nexa_core.release.promotion import read_decision

METRICS = ("accuracy", "macro_f1", "loss", "agreement")
STUDENT_SUFFIX = "-student"  # distilled students are claimed as `<run.name>-student_<time>`


def model_line(run_id: str, recorded: Optional[str] = None) -> str:
    """"student" (distilled) or "trained" (fine-tuned): what the deploy recorded, else what the run id says."""
    return recorded or ("student" if run_id.rsplit("_", 2)[0].endswith(STUDENT_SUFFIX) else "trained")


def current_deployment(layout: Layout) -> Optional[dict[str, Any]]:
    """The deployed model: run id, line, metrics, dataset version, when, by whom, the previous release, and the
    champion comparison that let it in. None when nothing is deployed."""
    run_id = deploy.current_release(layout)
    if run_id is None:
        return None
    records = deploy.history(layout)
    record = records[-1] if records and records[-1].get("run_id") == run_id else {}
    release = deploy.release_dir(layout, run_id)
    try:
        report = json.loads((release / "metrics.json").read_text())
    except (OSError, ValueError):
        report = {}
    decision = read_decision(layout, run_id)
    summary = {
        "run_id": run_id,
        "line": model_line(run_id, record.get("line")),
        "metrics": {k: report[k] for k in METRICS if isinstance(report.get(k), (int, float))},
        "num_examples": report.get("num_examples"),
        "dataset_version": report.get("dataset_version"),
        "action": record.get("action"),
        "deployed_at": record.get("deployed_at"),
        "by": record.get("by", "CLI") if record else None,
        "dagster_run_id": record.get("dagster_run_id"),
        "previous_run_id": record.get("previous_run_id"),
        "forced": bool(record.get("forced")),
        "overrides": record.get("overrides") or [],
        "promotion": decision["reason"] if decision and decision.get("champion_run_id") == record.get("previous_run_id")
        else None,
        "current_model": str(deploy.current_model_path(layout)),
        "history_length": len(records),
    }
    summary["state"] = state_key(summary)
    return summary


def state_key(summary: Optional[dict]) -> str:
    """Changes whenever a promotion or rollback takes effect (even one back to the same run)."""
    keyed = {k: summary.get(k) for k in ("run_id", "action", "deployed_at", "history_length")} if summary else {}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


def describe(summary: Optional[dict]) -> str:
    """The summary as `nexa deploy` prints it."""
    if summary is None:
        return "nothing deployed"
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in summary["metrics"].items()) or "no metrics recorded"
    who = f"Dagster run {summary['dagster_run_id']}" if summary.get("dagster_run_id") else summary["by"] or "unknown"
    lines = [
        f"{summary['current_model']} -> {summary['run_id']} ({summary['line']})",
        f"  metrics:  {metrics} (test split, {summary['num_examples'] or '?'} rows)",
        f"  dataset:  {summary['dataset_version'] or 'unknown'}",
        f"  deployed: {summary['deployed_at'] or 'unknown (not in the history)'} by {who}"
        + (" (rollback)" if summary["action"] == "rollback" else ""),
        f"  previous: {summary['previous_run_id'] or 'none'}",
    ]
    if summary["promotion"]:
        lines.append(f"  champion: {summary['promotion']}")
    if summary["forced"]:
        lines.append(f"  forced:   {'; '.join(summary['overrides'])}")
    return "\n".join(lines)
