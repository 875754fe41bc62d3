"""Turn `data:` config into a stored, content-addressed dataset version: load -> clean -> split -> hash -> write.

Layout: `<datasets_dir>/<version>/{train,validation,test}.parquet` + `dataset.json`; `<datasets_dir>/lines/<line>`
names the newest version of each line (source + data settings, lines.py) and `<datasets_dir>/LATEST` the newest
of any line.
The version is a hash of the split contents, so the same data and parameters always give the same version
(and re-preparing reuses the stored folder) while any changed row gives a new one. `data.shards: N > 1` stores the
train split as N shards (shards.py) and is hashed into the version too: the same rows in another layout are another
folder that a rank reads differently, so it gets its own id; shards=1 hashes exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nexa_core.common.atomic import atomic_write_json, atomic_write_text
from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig
from nexa_core.data.dataset import PreparedDataset
from nexa_core.data.lines import dataset_label, line_of, mark_latest
from nexa_core.data.loading import describe_source, load_raw, raw_row_count
from nexa_core.data.shards import SHARDED_SPLIT, write_shards
from nexa_core.data.splitting import SPLITS, split_dataset
from nexa_core.data.validation import clean

VERSION_CHARS = 16  # hex chars of the sha256 content hash kept as the version id
LATEST = "LATEST"
META = "dataset.json"


def prepare_dataset(cfg: DataConfig, datasets_dir: str | os.PathLike, seed: int) -> PreparedDataset:
    source = describe_source(cfg)
    raw = load_raw(cfg)
    num_raw_rows = raw_row_count(raw)  # undecodable records included: they are counted among the drops
    cleaned, drop_counts = clean(raw, cfg, source)
    splits = split_dataset(cleaned, cfg, seed)
    labels = sorted(str(label) for label in cleaned["label"].unique())
    version = content_version(splits, labels, cfg.shards)
    counts = {name: len(splits[name]) for name in SPLITS}
    line, label = line_of(cfg, seed), dataset_label(cfg)

    root = Path(datasets_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    reused = (final / META).is_file()
    if not reused:
        if final.exists():
            raise NexaError(f"{final} exists but has no {META} (not written by prepare); remove it and prepare again")
        meta = {
            "version": version,
            "labels": labels,
            "counts": counts,
            "drop_counts": drop_counts,
            "source": source,
            "line": line,
            "label": label,
            "num_raw_rows": num_raw_rows,
            "created_at": datetime.now(timezone.utc).isoformat(),  # microseconds: versions sort by it
            "text_column": cfg.text_column,
            "label_column": cfg.label_column,
            "seed": seed,
            "params": cfg.model_dump(include={"drop_labels", "max_samples", "eval_samples",
                                              "validation_fraction", "test_fraction"}),
            **({"shards": cfg.shards} if cfg.shards > 1 else {}),  # absent: one train file, as before shards
        }
        reused = _write_version(root, final, splits, labels, meta, cfg.shards)
    mark_latest(root, line, version)
    atomic_write_text(root / LATEST, version)
    return PreparedDataset(version, final, labels, counts, drop_counts, source, num_raw_rows, reused, line, label)


def load_prepared(folder: str | os.PathLike, field: str = "dataset") -> PreparedDataset:
    """A stored version folder (from `prepare_dataset` or the drop flow's `build_version`) as a PreparedDataset."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NexaError(f"{field}: no prepared dataset version at {folder} (missing or unreadable {META}); "
                        "prepare it first (training_dataset, or incremental_dataset for drops)") from None
    return PreparedDataset(meta["version"], folder, list(meta["labels"]), dict(meta.get("counts", {})),
                           dict(meta.get("drop_counts", {})), str(meta.get("source", "")),
                           int(meta.get("num_raw_rows", 0)), reused=True, line=str(meta.get("line", "")),
                           label=str(meta.get("label", "")))


def content_version(splits: dict[str, pd.DataFrame], labels: list[str], shards: int = 1) -> str:
    """First 16 hex chars of sha256 over the labels and every split's rows in order (JSON lines: unambiguous);
    a shard count above 1 is hashed first, so shards=1 keeps the versions prepared before shards existed."""
    digest = hashlib.sha256()
    if shards > 1:
        digest.update(json.dumps({"shards": shards}).encode("utf-8") + b"\n")
    digest.update(json.dumps({"labels": labels}, ensure_ascii=False).encode("utf-8") + b"\n")
    for name in SPLITS:
        digest.update(json.dumps({"split": name}).encode("utf-8") + b"\n")
        for text, label in zip(splits[name]["text"].tolist(), splits[name]["label"].tolist()):
            digest.update(json.dumps([text, label], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()[:VERSION_CHARS]


def _write_version(root: Path, final: Path, splits: dict[str, pd.DataFrame], labels: list[str], meta: dict,
                   shards: int = 1) -> bool:
    """Write into a temp folder next to `final` and rename it into place; True if a concurrent writer won."""
    # Readers never see a half-written version: the folder appears complete, in one rename.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        ids = {label: i for i, label in enumerate(labels)}
        for name in SPLITS:
            frame = splits[name]
            table = pa.table({
                "text": pa.array(frame["text"].tolist(), pa.string()),
                "label": pa.array(frame["label"].tolist(), pa.string()),
                "label_id": pa.array([ids[label] for label in frame["label"].tolist()], pa.int64()),
            })
            if name == SHARDED_SPLIT and shards > 1:
                write_shards(table, tmp / f"{name}.parquet", shards)
            else:
                pq.write_table(table, tmp / f"{name}.parquet")
        atomic_write_json(tmp / META, meta)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / META).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # same content already stored by a concurrent run
            return True
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return False


def dataset_for(cfg, layout) -> PreparedDataset:
    """The run's dataset version from its config (`data`, seeded split) under the layout's datasets folder."""
    return prepare_dataset(cfg.data, layout.datasets_dir, seed=cfg.training.distributed.seed)
