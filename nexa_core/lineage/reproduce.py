"""`reproduce(layout, run_id)`: train a recorded run again from its config snapshot, on its stored dataset version
(never re-prepared from the raw data, which may have changed), evaluate it, and compare its metrics.

A student is retrained from its recorded init folder, pairs and KD settings, refused in one line if any of them
is gone or changed. The new run is an ordinary run (`<name>-repro_<time>`, manifest and all) whose record says
`reproduces: <run_id>`. On CPU the same seed gives the same weights, so every metric comes back identical.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file
from nexa_core.common.layout import Layout
from nexa_core.data.dataset import PreparedDataset
from nexa_core.lineage.chain import run_record
from nexa_core.storage.settings import StorageSettings

TRAIN_FIGURES = ("train_loss",)  # the final training loss; speed figures differ run to run and are not compared
NAME_CHARS = 58  # run names are at most 64 characters: room for `-repro`


@dataclass(frozen=True)
class Reproduction:
    original: str
    run_id: str  # the new run
    dataset_version: str
    rows: list[tuple[str, Any, Any, Any]]  # (metric, original, reproduced, reproduced - original)

    @property
    def identical(self) -> bool:
        return all(d == 0 for _, _, _, d in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "run_id": self.run_id, "dataset_version": self.dataset_version,
                "identical": self.identical,
                "metrics": [dict(zip(("metric", "original", "reproduced", "difference"), r)) for r in self.rows]}


def reproduce(layout: Layout, run_id: str, storage: Optional[StorageSettings] = None) -> Reproduction:
    from nexa_core.evaluation.evaluate import evaluate_run
    from nexa_core.release.steps import record_manifest, run_config
    from nexa_core.training.record import update_record
    from nexa_core.training.steps import claim_run, train_run

    record = run_record(layout, run_id)
    if record.get("status") != "complete":
        raise NexaError(f"run {run_id} is {record.get('status') or 'of unknown status'}, not complete: only a finished "
                        "run has metrics to reproduce; pick a complete run")
    original_metrics = _original_metrics(layout, run_id)
    cfg = run_config(layout, run_id)
    student, kept = _student_work(layout, run_id, record)
    dataset = stored_dataset(layout, run_id, record)
    name = f"{run_id.rsplit('_', 2)[0][:NAME_CHARS]}-repro"
    work = {"init_from": student["init_from"], "pairs": str(student["pairs"]), "kd": student["kd"]} if student else {}
    with claim_run(cfg, dataset.version, layout, name=name, **work) as claim:
        new_id = claim.run_id
        update_record(claim.run_dir, reproduces=run_id, lineage=kept)
        result = train_run(cfg, dataset.path, new_id, layout, storage=storage, **(student or {}))
    report = evaluate_run(cfg, new_id, dataset.path, layout)
    record_manifest(cfg, new_id, layout, dataset, report, result.train_metrics)
    original_train = (record.get("train") or {}).get("train_metrics") or {}
    rows = compare_metrics(original_metrics, report, original_train, result.train_metrics)
    return Reproduction(run_id, new_id, dataset.version, rows)


def compare_metrics(original: dict, reproduced: dict, original_train: dict, reproduced_train: dict
                    ) -> list[tuple[str, Any, Any, Any]]:
    """Every number of the original's metrics.json (top level: a student's comparison with its teacher is not
    the student's own), then the final training loss; the difference is None where either side lacks it."""
    rows = [_row(k, v, reproduced.get(k)) for k, v in original.items() if _is_number(v)]
    rows += [_row(k, original_train[k], reproduced_train.get(k)) for k in TRAIN_FIGURES if k in original_train]
    return rows


def _row(name: str, a: Any, b: Any) -> tuple[str, Any, Any, Any]:
    return name, a, b, (b - a) if _is_number(a) and _is_number(b) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _original_metrics(layout: Layout, run_id: str) -> dict:
    path = layout.run_dir(run_id) / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise NexaError(f"run {run_id} has no readable metrics.json at {path}, so there is nothing to compare with; "
                        "evaluate it first") from None


def stored_dataset(layout: Layout, run_id: str, record: dict) -> PreparedDataset:
    """The run's dataset version folder: under today's datasets folder, else where the run recorded it."""
    from nexa_core.data.prepare import load_prepared

    lin = record.get("lineage") or {}
    version = (lin.get("dataset") or {}).get("version") or record.get("dataset_version")
    if not version:
        raise NexaError(f"run {run_id} records no dataset version, so it cannot be reproduced on its data; "
                        "train it again with `nexa train`")
    folder = layout.datasets_dir / version
    recorded = (lin.get("dataset") or {}).get("path")
    if not (folder / "dataset.json").is_file() and recorded and (Path(recorded) / "dataset.json").is_file():
        folder = Path(recorded)
    if not (folder / "dataset.json").is_file():
        raise NexaError(f"dataset version {version} of run {run_id} is gone ({folder}); re-create it with "
                        f"`nexa prepare --config {layout.run_dir(run_id) / 'config.yaml'}` (the same raw data gives "
                        "the same version) and reproduce again")
    dataset = load_prepared(folder, f"run {run_id} dataset")
    if dataset.version != version:
        raise NexaError(f"{folder} holds dataset version {dataset.version}, not {version} as run {run_id} records; "
                        "restore that version's folder")
    return dataset


def _student_work(layout: Layout, run_id: str, record: dict) -> tuple[Optional[dict], dict]:
    """(train_run's student arguments, or None for a fine-tuned run; the lineage the new run starts with)."""
    from nexa_core.distill.parents import STUDENT_KEYS
    from nexa_core.lineage.chain import role_of

    lin = record.get("lineage") or {}
    role = role_of(run_id, record)
    if role != "student":
        return None, {}  # a reproduced teacher is not anyone's teacher: training records it as `trained`
    kept = {k: lin[k] for k in STUDENT_KEYS if k in lin}
    init, pairs, kd = (lin.get(k) or {} for k in ("student_init", "pairs", "kd"))
    if not init or not pairs:
        raise NexaError(f"student run {run_id} was recorded before lineage: its init folder, pairs and KD settings "
                        "are unknown; distill it again with `nexa distill`")
    if lin.get("kind") == "causal_lm":
        raise NexaError(f"run {run_id} is a causal-LM student: reproduce supports classifiers and classifier "
                        "students; distill it again with `nexa distill`")
    if not (Path(init["path"]) / "config.json").is_file():
        raise NexaError(f"the init folder of student {run_id} is gone ({init['path']}); re-create it with `nexa "
                        f"distill --step student --config {layout.run_dir(run_id) / 'config.yaml'}` (a new student) or restore the folder")
    _check_pairs(layout, run_id, pairs)
    return {"init_from": init["path"], "pairs": Path(pairs["path"]),
            "kd": (kd.get("alpha"), kd.get("temperature")) if kd else None}, kept


def _check_pairs(layout: Layout, run_id: str, pairs: dict) -> None:
    path = Path(pairs["path"])
    fix = f"re-create them with `nexa distill --step pairs --config {layout.run_dir(run_id) / 'config.yaml'}`"
    if not path.is_file():
        raise NexaError(f"the distillation pairs of student {run_id} are gone ({path}); {fix}")
    found = sha256_file(path)[:len(pairs.get("sha256") or "")]
    if pairs.get("sha256") and found != pairs["sha256"]:
        raise NexaError(f"the distillation pairs of student {run_id} changed since it trained ({path}: sha256 "
                        f"{found}, recorded {pairs['sha256']}); {fix}")

