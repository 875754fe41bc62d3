"""Build a smaller student from a teacher: the same architecture with fewer layers, initialised from the
teacher's embeddings, head and an evenly spaced subset of its layers (DistilBERT's recipe)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nexa_core.common.errors import NexaError

_LAYER_KEY = re.compile(r"\.(layer|layers|h)\.(\d+)\.")


def layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer index for each student layer: evenly spaced, always keeping the first and the last."""
    if not 1 <= student_layers <= teacher_layers:
        raise NexaError(f"distill.student_layers={student_layers}: must be between 1 and the teacher's "
                        f"{teacher_layers} layers")
    return [int(round(x)) for x in np.linspace(0, teacher_layers - 1, student_layers)]


def make_student(teacher_dir: str | Path, out_dir: str | Path, student_layers: int, causal_lm: bool = False) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    auto = AutoModelForCausalLM if causal_lm else AutoModelForSequenceClassification
    teacher = auto.from_pretrained(teacher_dir)
    config = AutoConfig.from_pretrained(teacher_dir)
    layers_attr = "n_layer" if hasattr(config, "n_layer") else "num_hidden_layers"
    mapping = layer_map(getattr(config, layers_attr), student_layers)
    setattr(config, layers_attr, student_layers)
    student = auto.from_config(config)

    teacher_state = teacher.state_dict()
    new_state = {}
    for key in student.state_dict():
        match = _LAYER_KEY.search(key)
        source = key if not match else key.replace(match.group(0), f".{match.group(1)}.{mapping[int(match.group(2))]}.", 1)
        new_state[key] = teacher_state[source].clone()
    with torch.no_grad():
        missing, unexpected = student.load_state_dict(new_state, strict=False)
    if unexpected:
        raise NexaError(f"student init: unexpected weights {unexpected[:3]}; the teacher's architecture is unsupported")
    out_dir = Path(out_dir)
    student.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(teacher_dir).save_pretrained(out_dir)
    return out_dir


def parameter_count(model_dir: str | Path) -> int:
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                total += int(np.prod(fh.get_slice(key).get_shape()))
    return total
