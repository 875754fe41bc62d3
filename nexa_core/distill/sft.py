"""Sequence-level distillation for causal LMs: supervised fine-tuning on (prompt, teacher completion)
pairs with the prompt tokens masked out of the loss, using the same trainer as the classifiers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from nexa_core.config import NexaConfig


def sft_features(frame: pd.DataFrame, tokenizer, max_length: int):
    """input_ids = prompt + completion + eos; labels = -100 over the prompt so only the completion is learned."""
    import datasets

    rows = {"input_ids": [], "attention_mask": [], "labels": [], "length": []}
    for prompt, completion in zip(frame["text"], frame["completion"]):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt_ids + target_ids)[:max_length]
        labels = ([-100] * len(prompt_ids) + target_ids)[:max_length]
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        rows["labels"].append(labels)
        rows["length"].append(len(ids))
    return datasets.Dataset.from_dict(rows)


def train_causal_student(cfg: NexaConfig, pairs_path: Path, student_dir: Path, out_dir: Path,
                         callbacks: list | None = None) -> dict:
    """Fine-tune the student on the pairs (10% held out for validation loss); saves `out_dir/final`. `callbacks`
    run after the training log's (the MLflow step metrics)."""
    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, set_seed

    from nexa_core.training.callbacks import SmoothedLossLog
    from nexa_core.training.device import deterministic_on_cpu, resolve_device
    from nexa_core.training.hf import NexaTrainer, training_arguments

    frame = pd.read_parquet(pairs_path, columns=["text", "completion"])
    frame = frame.assign(text=[cfg.distill.prompt_template.format(text=t) for t in frame["text"]])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    held_out = max(1, len(frame) // 10)
    log_path = Path(out_dir) / "logs" / "train_log.jsonl"
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_seed(cfg.training.distributed.seed)
    model = AutoModelForCausalLM.from_pretrained(student_dir)
    device = resolve_device(cfg.training.device)
    args = training_arguments(cfg.training, Path(out_dir) / "checkpoints", device)
    args = dataclasses.replace(args, metric_for_best_model="loss", greater_is_better=False)
    trainer = NexaTrainer(
        model=model, args=args, processing_class=tokenizer,
        train_dataset=sft_features(frame.iloc[held_out:], tokenizer, cfg.model.max_length),
        eval_dataset=sft_features(frame.iloc[:held_out], tokenizer, cfg.model.max_length),
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
        # The same curves as a classifier run.
        callbacks=[SmoothedLossLog(log_path, cfg.training.loss_smoothing), *(callbacks or [])],
    )
    with deterministic_on_cpu(device):
        output = trainer.train()
    final = Path(out_dir) / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    return {"final_dir": str(final), "global_step": trainer.state.global_step, "train_metrics": output.metrics,
            "log_path": str(log_path)}
