"""A student's parents, recorded under `lineage` in its run.json before it trains: the teacher (its run, or the
pinned folder), the init folder cut from it, the teacher outputs, the input set, the pairs and the KD settings.

The training step adds the dataset, base model, code and environment to the same key (training/parents.py);
`nexa lineage` follows these links back to the raw data, and `nexa reproduce` retrains from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexa_core.common.hashing import sha256_file
from nexa_core.config import NexaConfig
from nexa_core.distill.handoff import DistillationPairs, Teacher

STUDENT_KEYS = ("role", "kind", "teacher", "student_init", "teacher_outputs", "inputs", "pairs", "kd")
PAIRS_HASH_CHARS = 16


def student_lineage(cfg: NexaConfig, teacher: Teacher, pairs: DistillationPairs, init: Path, outputs: Path,
                    inputs: Path, inputs_dataset: str) -> dict[str, Any]:
    """`outputs`: the teacher-output folder the pairs were made from; `inputs`: the input set's folder and
    `inputs_dataset` the dataset version it was built from."""
    d = cfg.distill
    pinned = teacher.run_id is None
    return {
        "role": "student",
        "kind": d.kind,
        # run_id is None for a pinned teacher: then `pinned_path` says what it was, and `trained_by` the run that
        # made it when the pinned folder is a NexaCompute run's final/.
        "teacher": {"run_id": teacher.run_id, "version": teacher.version, "path": str(teacher.path),
                    "pinned_path": str(teacher.path) if pinned else None, "trained_by": teacher.trained_by},
        "student_init": {"path": str(init), "cut_from": str(teacher.path), "teacher_version": teacher.version,
                         "layers": d.student_layers},
        "teacher_outputs": {"version": pairs.teacher_version, "model_version": teacher.version, "path": str(outputs)},
        "inputs": {"version": pairs.inputs_version, "path": str(inputs), "source_dataset_version": inputs_dataset},
        # The pairs folder is rewritten when the filters change: the content hash says whether it still holds
        # what this student trained on.
        "pairs": {"version": f"{pairs.teacher_version}/{pairs.inputs_version}", "path": str(pairs.path),
                  "sha256": sha256_file(pairs.path)[:PAIRS_HASH_CHARS], "kept": pairs.kept, "total": pairs.total},
        "kd": None if d.kind == "causal_lm" else {"alpha": d.alpha, "temperature": d.temperature},
    }
