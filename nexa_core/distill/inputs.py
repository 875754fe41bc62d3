"""Teacher inputs: the immutable, named input set a teacher labels (one Dagster dynamic partition per name).

Layout: `<distill_dir>/teacher_inputs/<version>/inputs.parquet` + `inputs.json`, where `distill_dir` is
`Layout.distill_dir` (`<shared>/data/processed/distillation`). Columns: input_id, text, label, label_id, split.
The prepared dataset's train split gives labelled rows (split="train"); extra texts give unlabelled ones
(label None, label_id -1, split="unlabelled"). `input_id` is a hash of the text alone, so the same text has the
same id in every input set and a teacher labels it once. A text appears once per set: the first copy is kept,
so a labelled train row wins over the same text given as an extra.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.data.names import INPUTS_DIR, INPUTS_FILE, INPUTS_META, inputs_dir, validate_name  # noqa: F401

COLUMNS = ("input_id", "text", "label", "label_id", "split")
ID_CHARS = 16
DATASET_META = "dataset.json"  # written by nexa_core.data.prepare


def input_id(text: str) -> str:
    """Stable id of a text: the first 16 hex chars of sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_CHARS]


def build_teacher_inputs(dataset_dir: str | os.PathLike, root: str | os.PathLike, version: str,
                         extra_texts: Optional[pd.DataFrame] = None) -> dict[str, Any]:
    """Write input set `version` (or reuse it if stored with the same rows); return its inputs.json plus
    `path` and `reused`. A stored version with other rows is an error: input sets are immutable."""
    validate_name(version)
    dataset_dir = Path(dataset_dir)
    frame = _assemble(dataset_dir, extra_texts)
    digest = _content_hash(frame)
    base = Path(root) / INPUTS_DIR
    final = base / version
    if final.exists():
        return _existing(final, version, digest)

    dataset_meta = _read_json(dataset_dir / DATASET_META, "the prepared dataset folder is incomplete; prepare again")
    splits = frame["split"].value_counts().to_dict()
    meta = {
        "version": version,
        "content_hash": digest,
        "source_dataset_version": dataset_meta.get("version", dataset_dir.name),
        "source_dataset_path": str(dataset_dir),
        "labels": dataset_meta.get("labels", []),
        "counts": {"train": int(splits.get("train", 0)), "unlabelled": int(splits.get("unlabelled", 0)),
                   "total": len(frame), "duplicates_dropped": int(frame.attrs.get("duplicates_dropped", 0)),
                   "blank_extras_dropped": int(frame.attrs.get("blank_extras_dropped", 0))},
        "created_at": datetime.now(timezone.utc).isoformat(),  # microseconds: "latest" sorts by it
    }
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
    try:
        pq.write_table(_to_table(frame), tmp / INPUTS_FILE)
        atomic_write_json(tmp / INPUTS_META, meta)
        try:
            os.rename(tmp, final)  # readers see the whole folder or nothing
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return _existing(final, version, digest)  # a concurrent writer won: same rows or an error
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**meta, "path": str(final), "reused": False}


def _assemble(dataset_dir: Path, extra_texts: Optional[pd.DataFrame]) -> pd.DataFrame:
    train_path = dataset_dir / "train.parquet"
    if not train_path.exists():  # a file, or a folder of per-drop parts (drop dataset versions)
        raise NexaError(f"{train_path} not found: dataset_dir must be a prepared dataset version folder "
                        "(<shared>/data/processed/training/<version>); run the data preparation first")
    train = pd.read_parquet(train_path)
    missing = [c for c in ("text", "label", "label_id") if c not in train.columns]
    if missing:
        raise NexaError(f"{train_path}: missing columns {missing}; prepare the data again")
    texts = [str(t) for t in train["text"].tolist()]
    labels: list[Optional[str]] = [str(x) for x in train["label"].tolist()]
    label_ids = [int(x) for x in train["label_id"].tolist()]
    splits = ["train"] * len(texts)

    blank = 0
    if extra_texts is not None:
        if not isinstance(extra_texts, pd.DataFrame) or "text" not in extra_texts.columns:
            raise NexaError("extra_texts: expected a DataFrame with a 'text' column of unlabelled texts")
        for value in extra_texts["text"].tolist():
            text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
            if not text:
                blank += 1
                continue
            texts.append(text)
            labels.append(None)
            label_ids.append(-1)
            splits.append("unlabelled")

    # object columns: pandas 3 would turn the None labels of unlabelled rows into NaN in a str column.
    frame = pd.DataFrame({"input_id": pd.Series([input_id(t) for t in texts], dtype=object),
                          "text": pd.Series(texts, dtype=object), "label": pd.Series(labels, dtype=object),
                          "label_id": pd.Series(label_ids, dtype="int64"), "split": pd.Series(splits, dtype=object)})
    kept = frame.drop_duplicates("input_id", keep="first").reset_index(drop=True)
    kept.attrs["duplicates_dropped"] = len(frame) - len(kept)
    kept.attrs["blank_extras_dropped"] = blank
    return kept


def _content_hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for row in zip(*(frame[c].tolist() for c in COLUMNS)):
        digest.update(json.dumps(list(row), ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _to_table(frame: pd.DataFrame) -> pa.Table:
    return pa.table({
        "input_id": pa.array(frame["input_id"].tolist(), pa.string()),
        "text": pa.array(frame["text"].tolist(), pa.string()),
        "label": pa.array(frame["label"].tolist(), pa.string()),
        "label_id": pa.array(frame["label_id"].tolist(), pa.int64()),
        "split": pa.array(frame["split"].tolist(), pa.string()),
    })


def _existing(final: Path, version: str, digest: str) -> dict[str, Any]:
    meta = _read_json(final / INPUTS_META, "it was not written by build_teacher_inputs; remove it or pick a new "
                                           "distill.inputs_version")
    if meta.get("content_hash") != digest:
        raise NexaError(
            f"distill.inputs_version: input set {version!r} already exists at {final} with other content and "
            "input sets are immutable; choose a new version name (e.g. a dated one such as drop-2026-11-22)"
        )
    return {**meta, "path": str(final), "reused": True}


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise NexaError(f"{path}: unreadable ({type(err).__name__}); {fix}") from None
    if not isinstance(meta, dict):
        raise NexaError(f"{path}: not a JSON object; {fix}")
    return meta
