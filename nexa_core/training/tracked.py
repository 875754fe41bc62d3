"""A training run's MLflow run: opened (or reopened on resume) when training starts, closed with its final figures,
config snapshot, environment and training log; `tracking.json` beside run.json names it for the steps that follow
(evaluation and manifest, deploy). Under torchrun the launcher opens it and rank 0 reopens it: one run, one writer."""

from __future__ import annotations

import json
from pathlib import Path

from nexa_core.config import NexaConfig
from nexa_core.tracking.params import config_params, scrub
from nexa_core.tracking.runs import note_failure, start_run
from nexa_core.tracking.tracker import NullTracker


def run_kind(run_id: str, student: bool) -> str:
    """trained (fine-tuned), teacher or student: the MLflow tag `nexa.kind`, so the UI filters one line."""
    name = run_id.rsplit("_", 2)[0]
    return "student" if student else "teacher" if name.endswith("-teacher") else "trained"


def open_training_run(cfg: NexaConfig, run_dir: Path, run_id: str, info: dict, source: str,
                      student: bool) -> NullTracker:
    env = _environment(run_dir)
    tags = {"nexa.run_id": run_id, "nexa.kind": run_kind(run_id, student), "nexa.dataset_version": info.get("version"),
            "nexa.dataset_source": info.get("source"), "nexa.base_model": source,
            "nexa.code_commit": env.get("git_commit"), "nexa.code_dirty": (env.get("git") or {}).get("dirty"),
            "nexa.environment_fingerprint": env.get("fingerprint"),
            "mlflow.source.git.commit": env.get("git_commit")}
    params = {**config_params(cfg.model_dump(mode="json")), "dataset_version": str(info.get("version")),
              "init_from": source}
    tags = scrub(tags)  # a source path or base model given as a URL may carry credentials
    tracker = start_run(cfg, run_id, tags=tags, params=params, folder=run_dir)
    tracker.set_tags({k: v for k, v in tags.items() if v is not None})  # a reopened run: this attempt's environment
    return tracker


def close_training_run(tracker: NullTracker, run_dir: Path, result=None, error: BaseException | None = None) -> None:
    """Final figures and artifacts, then the status: FINISHED, FAILED, or KILLED for Ctrl-C (resumable)."""
    if error is not None:
        tracker.finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
    else:
        tracker.log_metrics({**{k: v for k, v in result.train_metrics.items()},
                             **{f"best_validation_{k}": v for k, v in result.best_eval.items()}},
                            step=result.global_step)
        log_scrubbed_config(tracker, run_dir / "config.yaml")
        for name in ("environment.json", "logs/train_log.jsonl"):  # both hold no secret (environment is redacted)
            tracker.log_artifact(run_dir / name, str(Path("run", name).parent))
        tracker.finish("FINISHED")
    note_failure(run_dir, tracker)


def log_scrubbed_config(tracker: NullTracker, snapshot: Path) -> None:
    """The config snapshot as `run/config.yaml`, scrubbed like the params: the tracking server is read by people the
    run folder is not."""
    import tempfile

    import yaml

    if not tracker or not snapshot.is_file():
        return
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "config.yaml"
        copy.write_text(yaml.safe_dump(scrub(yaml.safe_load(snapshot.read_text()) or {}), sort_keys=False))
        tracker.log_artifact(copy, "run")


def _environment(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "environment.json").read_text())
    except (OSError, ValueError):
        return {}
