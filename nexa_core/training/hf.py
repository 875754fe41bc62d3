"""Our HF Trainer: dynamic padding, resumable length grouping, validation metrics, best-model tracking."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from nexa_core.config import TrainingConfig
from nexa_core.training.fastpath import fast_path_for
from nexa_core.training.metrics import classification_metrics
from nexa_core.training.precision import trainer_flags
from nexa_core.training.sampler import EpochSeededLengthGroupedSampler


@dataclass
class NexaTrainingArguments(TrainingArguments):
    """TrainingArguments that train on one chosen GPU (`device_index`) without touching CUDA_VISIBLE_DEVICES.

    A single process puts HF on `cuda:0` and wraps the model in DataParallel over every visible GPU; accelerate's
    state holds bare `cuda` (the current device). Here the chosen GPU becomes the current device, the device of
    the shared accelerate state and of the Trainer, and the only GPU the process trains on. Under torchrun each
    worker keeps the GPU of its local rank.
    """

    device_index: int | None = field(default=None, metadata={"help": "the one GPU a single process trains on"})

    @cached_property
    def _setup_devices(self):
        import torch
        from accelerate.utils import DistributedType

        device = TrainingArguments._setup_devices.func(self)
        state = self.distributed_state
        if self.device_index is None or self.use_cpu or state is None or state.distributed_type != DistributedType.NO:
            return device
        device = torch.device("cuda", self.device_index)
        torch.cuda.set_device(device)  # bare `cuda` (accelerate, autocast, new tensors) now means this GPU
        state.device = device  # shared with the Accelerator the Trainer builds next
        self._n_gpu = 1  # one GPU, never DataParallel over the others
        return device


class NexaTrainer(Trainer):
    """The Trainer with our resumable length grouping; the loss is HF's (the causal-LM SFT student uses it as is)."""
    # True when the train dataset is this rank's own shards (features.tokenized_train): the accelerator would split
    # its batches across the ranks again, so its loader is prepared as a single process's.
    rank_local_train = False
    batch_counter = None  # throughput.BatchCounter: counts of batches collated in loader workers are added here

    def _prepare_inputs(self, inputs):
        from nexa_core.training.throughput import COUNTS

        counts = inputs.pop(COUNTS, None) if hasattr(inputs, "pop") else None
        if counts is not None and self.batch_counter is not None:
            self.batch_counter.add(*counts)
        return super()._prepare_inputs(inputs)

    def get_train_dataloader(self):
        if not self.rank_local_train:
            return super().get_train_dataloader()
        from accelerate.data_loader import prepare_data_loader

        accelerator = self.accelerator

        def prepare(loader):
            prepared = prepare_data_loader(loader, accelerator.device, num_processes=1, process_index=0,
                                           put_on_device=accelerator.device_placement, non_blocking=accelerator.non_blocking)
            accelerator._dataloaders.append(prepared)
            return prepared

        accelerator.prepare = prepare  # for this one call: the Trainer builds the loader, then prepares it
        try:
            return super().get_train_dataloader()
        finally:
            del accelerator.prepare

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        # The Trainer drops non-model columns before this call, so read lengths from the original dataset.
        lengths = self.train_dataset["length"]
        # The global batch: under DDP accelerate deals this order's per-device batches out to the ranks in turn,
        # so DDP's step k trains on the rows a single process's step k does with the same global batch size.
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        self._epoch_sampler = EpochSeededLengthGroupedSampler(batch, list(lengths), seed=self.args.data_seed or self.args.seed)
        return self._epoch_sampler

    def _run_epoch(self, *args, **kwargs):
        # A resumed epoch's loader comes from accelerate's skip_first_batches, whose SkipBatchSampler hides the sampler
        # from the Trainer's set_epoch: the resumed epoch would replay epoch 0's order (seen under DDP). Seed it here.
        sampler = getattr(self, "_epoch_sampler", None)
        if sampler is not None and "epoch" in kwargs:
            sampler.set_epoch(kwargs["epoch"])
        return super()._run_epoch(*args, **kwargs)


class ClassifierTrainer(NexaTrainer):
    """Trains a sequence classifier, whose loss is the mean over the batch's rows and never takes `num_items_in_batch`.

    HF reads `model_accepts_loss_kwargs` off the model's `**kwargs` (every recent BERT-like has one) and then
    (a) multiplies the loss by the number of processes, expecting a sum divided by the global row count, and
    (b) skips dividing by the gradient-accumulation steps. With a mean loss that logged, evaluated and
    back-propagated world_size x grad_accumulation times the true loss. Off, the loss is the batch mean: DDP
    averages gradients over ranks and HF logs the mean of the ranks' losses, which on equal per-rank batches
    is the single-process loss of the same global batch. (A causal LM's loss does divide by
    `num_items_in_batch`: the SFT student keeps HF's path, on NexaTrainer.)
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean; HF divides by the accumulation steps

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # no num_items_in_batch, so no x world_size on the loss


class KDTrainer(ClassifierTrainer):
    """Trains a student on stored teacher logits: alpha * CE(gold) + (1 - alpha) * T^2 * KL(teacher || student).

    Rows without teacher logits (the validation split) fall back to plain cross-entropy.
    """

    def __init__(self, *args, alpha: float, temperature: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha, self.temperature = alpha, temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch.nn.functional as F

        from nexa_core.training.kd_loss import kd_loss

        inputs = dict(inputs)
        topk_ids, topk_logits = inputs.pop("teacher_topk_ids", None), inputs.pop("teacher_topk_logits", None)
        inputs.pop("length", None)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        if topk_ids is None:
            loss = F.cross_entropy(outputs.logits, labels, ignore_index=-100)
        else:
            loss = kd_loss(outputs.logits, labels, topk_ids, topk_logits, self.alpha, self.temperature)
        return (loss, outputs) if return_outputs else loss


def training_arguments(cfg: TrainingConfig, output_dir: Path, device, keep_columns: bool = False) -> TrainingArguments:
    """`device`: the resolved `training.device` (nexa_core.training.device.resolve_device). The `auto` settings
    resolve here for that device (fastpath.py): on a GPU bf16, tf32, fused AdamW, background loading into pinned
    memory; on the CPU exactly the fp32 single-process path."""
    from nexa_core.training.device import training_device_args

    fast = fast_path_for(cfg, device)
    cuda = device.type == "cuda"
    greater_is_better = cfg.best_metric != "loss"
    return NexaTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accumulation,
        learning_rate=cfg.optimizer.lr,
        optim=fast.optimizer,
        weight_decay=cfg.optimizer.weight_decay,
        max_grad_norm=cfg.optimizer.max_grad_norm,
        lr_scheduler_type=cfg.schedule.name,
        warmup_steps=cfg.schedule.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        **trainer_flags(fast),
        torch_compile=fast.compile,
        seed=cfg.distributed.seed,
        # Seeding only: determinism on CPU comes from device.deterministic_on_cpu around train(), without the
        # environment variables HF's full_determinism would leave in the process.
        full_determinism=False,
        **training_device_args(device),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        # HF's NaN/inf filter tests every step's loss on the host: one GPU sync per step. On a GPU the loss stays on
        # the device until a logging step (a NaN then shows in the log as it is); on the CPU it costs nothing.
        logging_nan_inf_filter=not cuda,
        eval_strategy="steps",
        eval_steps=cfg.checkpoint.every_steps,
        save_strategy="steps",
        save_steps=cfg.checkpoint.every_steps,
        # HF keeps the best checkpoint on top of the (limit - 1) most recent ones.
        save_total_limit=cfg.checkpoint.keep + 1,
        load_best_model_at_end=True,
        # Stateful callbacks (the loss EMA) come back from the checkpoint's trainer_state.json on resume.
        restore_callback_states_from_checkpoint=True,
        metric_for_best_model=cfg.best_metric,
        greater_is_better=greater_is_better,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=fast.loader_workers,
        dataloader_pin_memory=fast.pin_memory,
        dataloader_persistent_workers=fast.loader_workers > 0,  # not a new set of processes per epoch and eval
        accelerator_config={"non_blocking": fast.pin_memory},  # copies from pinned memory overlap the compute
        remove_unused_columns=not keep_columns,  # KD needs the teacher columns in each batch
    )


def build_trainer(model, tokenizer, args, train_ds, eval_ds, label_names, callbacks, kd=None,
                  throughput: bool = False) -> NexaTrainer:
    """With `throughput`, samples/s, tokens/s, memory (and MFU on a known GPU) join each training log record."""
    def compute_metrics(prediction):
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        metrics = classification_metrics(np.asarray(logits), np.asarray(prediction.label_ids), label_names)
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

    trainer_cls, extra = (KDTrainer, {"alpha": kd[0], "temperature": kd[1]}) if kd else (ClassifierTrainer, {})
    # Pad each batch to its own longest row (rounded up on a GPU: pad_multiple), never to max_length.
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(args))
    counter = None
    if throughput:
        from nexa_core.training.throughput import BatchCounter, ThroughputLog

        collator = counter = BatchCounter(collator)
        callbacks = [ThroughputLog(collator), *callbacks]  # first: it adds to the record the JSONL log writes
    trainer = trainer_cls(
        **extra,
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    trainer.batch_counter = counter
    return trainer


def pad_multiple(args) -> int | None:
    """Under torch.compile 64 tokens (every new width is a recompile: 128 / 64 = 2 widths at max_length 128); else
    on a GPU 8 (tensor-core tile sizes); on the CPU none (each batch to its own longest row, as before)."""
    if args.torch_compile:
        return 64
    return None if args.use_cpu else 8
