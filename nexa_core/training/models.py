"""Load a sequence classifier and its tokenizer from a hub id or a local folder."""

from __future__ import annotations

from pathlib import Path

from nexa_core.common.errors import NexaError
from nexa_core.common.resolve import resolve_location


def load_errors() -> tuple[type[Exception], ...]:
    """What loading a model folder raises for a missing, foreign or damaged file (a truncated safetensors file
    raises safetensors' own error, not OSError)."""
    from safetensors import SafetensorError

    return OSError, ValueError, SafetensorError


def load_tokenizer(location: str, revision: str | None = None, field: str = "model.name_or_path"):
    from transformers import AutoTokenizer

    path = resolve_location(location, field)
    try:
        return AutoTokenizer.from_pretrained(path, revision=revision)
    except (OSError, ValueError) as err:
        raise NexaError(f"{field}: cannot load a tokenizer from {location!r} ({first_line(err)})") from None


def label_names(config) -> list[str]:
    """A classifier config's class names in id order (what its logits' columns mean)."""
    return [config.id2label[i] for i in range(config.num_labels)]


# What architectures call their dropout probabilities (BERT/RoBERTa, DistilBERT, BART-likes, GPT-2).
DROPOUT_ATTRS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "dropout",
                 "attention_dropout", "seq_classif_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop")


def load_classifier(location: str, label_names: list[str], revision: str | None = None,
                    dropout: float | None = None):
    """A classifier head sized to the data's labels; a pretrained head of another size is re-initialised.
    `dropout` (model.dropout) replaces every dropout probability the model's config has; None keeps them."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_location(location, "model.name_or_path")
    if _looks_local(location) and not Path(path).exists():
        raise NexaError(f"model.name_or_path: {path} does not exist; point it at a model folder or a hub id")
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path,
            revision=revision,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            ignore_mismatched_sizes=True,
            **_dropout_settings(path, revision, dropout),
        )
    except load_errors() as err:
        raise NexaError(f"model.name_or_path: cannot load {location!r} ({first_line(err)}); point it at a complete "
                        "model folder or a hub id") from None


def _dropout_settings(path: str, revision: str | None, dropout: float | None) -> dict:
    """Config keyword arguments setting `dropout` under the names this model's config uses (only those: an
    unknown one would reach the model's constructor)."""
    if dropout is None:
        return {}
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, revision=revision)
    return {name: dropout for name in DROPOUT_ATTRS if hasattr(config, name)}


def _looks_local(location: str) -> bool:
    return location.startswith(("/", ".", "~", "package://"))


def first_line(err: Exception) -> str:
    """The first line of an error's message (library errors can span many), or its type's name."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
