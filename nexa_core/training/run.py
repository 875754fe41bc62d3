"""Train a classifier for one run: set up, resume if a checkpoint exists, train, save `final/`."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig
from nexa_core.storage.settings import StorageSettings
from nexa_core.tracking.callback import MlflowStepCallback
from nexa_core.tracking.loggers import logger_callbacks
from nexa_core.tracking.tracker import NullTracker
from nexa_core.training.callbacks import SmoothedLossLog, read_log
from nexa_core.training.features import tokenized_pairs, tokenized_split, tokenized_train
from nexa_core.training.launch import in_worker, is_main_process, launch, rank, world_size
from nexa_core.training.models import load_classifier, load_tokenizer
from nexa_core.training.parents import training_lineage
from nexa_core.training.record import update_record, work_key
from nexa_core.training.throughput import throughput_summary
from nexa_core.training.tracked import close_training_run, open_training_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_dir: str
    final_dir: str
    best_checkpoint: str | None
    resumed_from: str | None
    global_step: int
    train_metrics: dict
    best_eval: dict
    log_path: str
    fast_path: dict = field(default_factory=dict)  # resolved precision, tf32, optimizer, attention, compile, loader

    def to_dict(self) -> dict:
        return asdict(self)


def train(cfg: NexaConfig, dataset_dir: Path, run_id: str, layout: Layout, *, init_from: str | None = None,
          pairs: Path | None = None, kd: tuple[float, float] | None = None,
          storage: StorageSettings | None = None, callbacks: list | None = None, launcher=None) -> TrainResult:
    """Fine-tune `init_from` (default: model.name_or_path) on the dataset's train split, or, for a
    student, on distillation `pairs` with the KD loss `kd=(alpha, temperature)`. With `storage`, every new
    best checkpoint is pushed to that durable store (S3 or the local mirror) as soon as it is saved. `callbacks`:
    extra TrainerCallbacks (a tuning trial's pruning reporter; under torchrun, the callbacks of the rank they are
    passed in). `launcher`: how node 0's torchrun agent is started when the config asks for several processes
    (nexa_core/training/launch.py; the Dagster trainer resource passes its Pipes launcher)."""
    from nexa_core.training.preflight import check_training

    # Before torchrun starts: a bad precision is one line here rather than a traceback from every worker.
    device, _ = check_training(cfg, init_from)
    if cfg.training.processes() > 1 and not in_worker():
        # The launcher opens the MLflow run, so every rank finds it in tracking.json; rank 0 logs to it.
        info = json.loads((Path(dataset_dir) / "dataset.json").read_text())
        open_training_run(cfg, layout.run_dir(run_id), run_id, info, init_from or cfg.model.name_or_path, kd is not None)
        return launch(cfg, dataset_dir, run_id, layout, launcher, init_from=init_from, pairs=pairs, kd=kd,
                      storage=storage)
    from transformers import set_seed

    from nexa_core.training.device import deterministic_on_cpu
    from nexa_core.training.fastpath import attention_of, fast_path_for
    from nexa_core.training.hf import build_trainer, training_arguments

    info = json.loads((Path(dataset_dir) / "dataset.json").read_text())
    labels = list(info["labels"])
    run_dir = layout.run_dir(run_id)
    ckpt_dir = layout.checkpoints_dir(run_id)
    # Everything that can reject the config (precision, model, tokenizer) runs before any folder is made.
    args = training_arguments(cfg.training, ckpt_dir, device, keep_columns=kd is not None)
    source = init_from or cfg.model.name_or_path
    tokenizer = load_tokenizer(source, cfg.model.revision)
    set_seed(cfg.training.distributed.seed)  # before building the model: a new head is identical across runs
    model = load_classifier(source, labels, cfg.model.revision, cfg.model.dropout)
    fast_path = fast_path_for(cfg.training, device).record(attention_of(model))  # what `auto` became here
    rank_local = False
    if pairs:
        train_ds = tokenized_pairs(pairs, tokenizer, cfg.model.max_length)
    else:  # under torchrun, a sharded version gives this rank only its shards
        train_ds, rank_local = tokenized_train(dataset_dir, tokenizer, cfg.model.max_length,
                                               world_size() if in_worker() else 1, rank())
    eval_ds = tokenized_split(dataset_dir, "validation", tokenizer, cfg.model.max_length)

    main = is_main_process()  # under torchrun only rank 0 writes run files; HF guards its own saves
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        update_record(run_dir, run_id=run_id, key=work_key(cfg, info["version"], init_from, pairs, kd),
                      status="running", dataset_version=info["version"], model=source, checkpoints_dir=str(ckpt_dir),
                      environment_fingerprint=record_environment(run_dir), fast_path=fast_path,
                      # how often torchrun restarted the workers (a failed one, --max-restarts) before this attempt
                      **({"torchrun_restarts": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))}
                         if in_worker() else {}),
                      lineage=training_lineage(cfg, dataset_dir, init_from, run_dir))  # after: reads environment.json
    tracker = open_training_run(cfg, run_dir, run_id, info, source, kd is not None) if main else NullTracker()
    last = last_complete_checkpoint(ckpt_dir)
    if last:
        log.info("resuming %s from %s", run_id, last)
    log_path = run_dir / "logs" / "train_log.jsonl"
    extra, callbacks = list(callbacks or []), [SmoothedLossLog(log_path, cfg.training.loss_smoothing),
                                               *logger_callbacks(cfg, run_dir, run_id)] if main else []
    if storage is not None and main:
        from nexa_core.storage.callback import BestCheckpointMirror
        from nexa_core.storage.settings import open_durable

        callbacks.append(BestCheckpointMirror(open_durable(storage, layout), run_id))
    callbacks += [MlflowStepCallback(tracker), *extra]  # MLflow after ours: it sends what they added to the log
    # Throughput on every rank: each counts its own batches and the counts are summed over ranks at each log.
    trainer = build_trainer(model, tokenizer, args, train_ds, eval_ds, labels, callbacks, kd=kd, throughput=True)
    trainer.rank_local_train = rank_local

    started = time.time()
    try:
        with deterministic_on_cpu(device):
            output = trainer.train(resume_from_checkpoint=str(last) if last else None)
        final_dir = run_dir / "final"
        trainer.save_model(str(final_dir))  # the best model: load_best_model_at_end restored it
        if main:
            tokenizer.save_pretrained(str(final_dir))
    except BaseException as err:
        close_training_run(tracker, run_dir, error=err)
        raise

    state = trainer.state
    best_eval = next((r for r in state.log_history if r.get("step") == _step_of(state.best_model_checkpoint)
                      and "eval_loss" in r), {})
    result = TrainResult(
        run_id=run_id,
        run_dir=str(run_dir),
        final_dir=str(final_dir),
        best_checkpoint=state.best_model_checkpoint,
        resumed_from=str(last) if last else None,
        global_step=state.global_step,
        train_metrics={**output.metrics, **throughput_summary(read_log(log_path)), "wall_seconds": time.time() - started},
        best_eval={k.removeprefix("eval_"): v for k, v in best_eval.items() if k.startswith("eval_")},
        log_path=str(log_path),
        fast_path=fast_path,
    )
    if main:
        update_record(run_dir, status="complete", train=result.to_dict())
        close_training_run(tracker, run_dir, result)
    return result


def record_environment(run_dir: Path) -> str:
    """Write the environment this run trains in (`environment.json`) and return its fingerprint hash, so the
    model traces back to its software and hardware; a resumed run keeps the hash of its latest attempt."""
    from nexa_core.common.atomic import atomic_write_json
    from nexa_core.telemetry.fingerprint import environment_report

    report = environment_report()
    atomic_write_json(Path(run_dir) / "environment.json", report)
    return report["fingerprint"]


def last_complete_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint whose save finished: HF writes trainer_state.json last, so a folder
    without it was cut off by a crash mid-save and is skipped rather than resumed from."""
    done = [p for p in Path(ckpt_dir).glob("checkpoint-*") if _readable_json(p / "trainer_state.json")]
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[-1]), default=None)


def _readable_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None
