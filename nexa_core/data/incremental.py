"""Incremental datasets from data drops: processing a drop reads only that drop, whatever came before.

Two steps, each with a cost that does not grow with the number of past drops:

* `ingest_drop` reads one drop, cleans it (the same rules as `prepare_dataset`), de-duplicates it against
  every text seen before through a persistent hash index (SQLite, primary key on the text's hash: one index
  lookup per row), and assigns each row its split from a hash of its text and the seed, so a row's split never
  depends on other rows and old rows never move. A malformed drop is recorded as invalid with the reason.
* `build_version` folds the drops ingested since the last version into a new dataset version. The version is
  a content hash chained over the drops (sha256 of the parent version, the labels and each new drop's row
  hash), so it names exactly the rows it holds without re-reading older drops. Its folder holds the usual
  `dataset.json` and `{train,validation,test}.parquet` - here Parquet *datasets* (folders) of hard links to
  per-drop part files - so DataQuery, the trainer and the evaluator read it like any prepared version.
  Only a new label forces a rewrite of older parts (label ids are indices into the sorted label list).

Layout under `Layout.drops_dir` (`<shared>/data/processed/drops/`):
    index.sqlite                                  drops, seen texts (hash -> label), versions
    rows/<seq>-<name>.parquet                     a drop's kept rows: text, label, split
    parts/<labels-hash>/<seq>-<name>/<split>.parquet   the same rows with label_id, for one label list
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nexa_core.common.atomic import atomic_write_json, atomic_write_text
from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig
from nexa_core.data.drops import validate_drop_name
from nexa_core.data.lines import DROPS_LINE, mark_latest
from nexa_core.data.loading import load_file, raw_row_count
from nexa_core.data.prepare import LATEST, META, VERSION_CHARS, PreparedDataset
from nexa_core.data.splitting import SPLITS
from nexa_core.data.validation import DROP_REASONS, clean_rows, dedupe_key

INDEX = "index.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS drops (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL, reason TEXT, sha256 TEXT, raw_rows INTEGER, rows INTEGER, counts TEXT,
    drop_counts TEXT, labels TEXT, row_hash TEXT, ingested_at TEXT);
CREATE TABLE IF NOT EXISTS texts (key BLOB PRIMARY KEY, label TEXT NOT NULL, drop_seq INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (seq INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL,
    upto_drop INTEGER NOT NULL, labels TEXT NOT NULL, counts TEXT NOT NULL, drop_counts TEXT NOT NULL,
    raw_rows INTEGER NOT NULL, created_at TEXT NOT NULL);
"""


@contextlib.contextmanager
def _index(root: Path) -> Iterator[sqlite3.Connection]:
    """The index, with a write lock held for the whole block (BEGIN IMMEDIATE): concurrent drops serialise."""
    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(root / INDEX, timeout=300, isolation_level=None)
    try:
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _text_hash(text: str) -> bytes:
    return hashlib.sha256(dedupe_key(text).encode("utf-8")).digest()


def assign_split(text: str, cfg: DataConfig, seed: int) -> str:
    """A row's split from a hash of its text and the seed alone: stable whatever else arrives."""
    digest = hashlib.sha256(f"{seed}/split/{dedupe_key(text)}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    if u < cfg.test_fraction:
        return "test"
    if u < cfg.test_fraction + cfg.validation_fraction:
        return "validation"
    return "train"


def _rows_hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for row in zip(frame["split"].tolist(), frame["text"].tolist(), frame["label"].tolist()):
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _stem(seq: int, name: str) -> str:
    return f"{seq:08d}-{name}"


def ingest_drop(cfg: DataConfig, root: str | os.PathLike, name: str, path: str | os.PathLike, seed: int) -> dict:
    """Clean, de-duplicate and split one drop; record it in the index. Idempotent per drop name.

    Returns the drop's record: status ("valid" or "invalid"), reason, rows kept, counts per split, drop counts
    by reason (the cleaning reasons plus `seen_before` and `conflicts_with_earlier`), labels, reused."""
    root, path = Path(root), Path(path)
    validate_drop_name(name)
    with _index(root) as db:
        existing = _drop_record(db, name)
        if existing:
            return {**existing, "reused": True}
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        now = datetime.now(timezone.utc).isoformat()
        try:
            raw = load_file(path, cfg.encoding, (cfg.text_column, cfg.label_column))
            cleaned, drops = clean_rows(raw, cfg, f"drop {name}")
        except NexaError as err:
            # Recorded, never raised: a malformed drop is reported (and fails its check) without wedging anything.
            reason = str(err).replace("data.path: ", "", 1)
            db.execute("INSERT INTO drops (name, status, reason, sha256, ingested_at) VALUES (?, 'invalid', ?, ?, ?)",
                       (name, reason, sha, now))
            return {**_drop_record(db, name), "reused": False}
        drops = {**drops, "seen_before": 0, "conflicts_with_earlier": 0}
        keys = [_text_hash(t) for t in cleaned["text"].tolist()]
        seen = _lookup(db, keys)
        keep = []
        for i, (key, label) in enumerate(zip(keys, cleaned["label"].tolist())):
            if key not in seen:
                keep.append(i)
            elif seen[key] == label:
                drops["seen_before"] += 1
            else:
                drops["conflicts_with_earlier"] += 1  # the earlier row is in a released version: it stays
        kept = cleaned.iloc[keep].reset_index(drop=True)
        kept["split"] = [assign_split(t, cfg, seed) for t in kept["text"].tolist()]
        if kept.empty:
            status, reason = "valid", "no new rows (all seen before or dropped while cleaning)"
        else:
            status, reason = "valid", None
        cur = db.execute("INSERT INTO drops (name, status, reason, sha256, raw_rows, rows, ingested_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (name, status, reason, sha, raw_row_count(raw), len(kept), now))
        seq = cur.lastrowid
        counts = {s: int((kept["split"] == s).sum()) for s in SPLITS}
        labels = sorted(set(kept["label"].tolist()))
        row_hash = _rows_hash(kept) if not kept.empty else None
        if not kept.empty:
            rows_path = root / "rows" / f"{_stem(seq, name)}.parquet"
            rows_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = rows_path.with_name(f".{rows_path.name}.tmp")
            pq.write_table(pa.table({c: pa.array(kept[c].tolist(), pa.string()) for c in ("text", "label", "split")}),
                           tmp)
            os.replace(tmp, rows_path)  # if the transaction then fails, a re-ingest overwrites this file
            db.executemany("INSERT OR IGNORE INTO texts (key, label, drop_seq) VALUES (?, ?, ?)",
                           [(keys[i], cleaned["label"].iat[i], seq) for i in keep])
        db.execute("UPDATE drops SET counts = ?, drop_counts = ?, labels = ?, row_hash = ? WHERE seq = ?",
                   (json.dumps(counts), json.dumps(drops), json.dumps(labels), row_hash, seq))
        return {**_drop_record(db, name), "reused": False}


def _lookup(db: sqlite3.Connection, keys: list[bytes]) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):  # SQLite caps bound parameters per statement
        chunk = unique[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(db.execute(f"SELECT key, label FROM texts WHERE key IN ({marks})", chunk).fetchall())
    return found


def _drop_record(db: sqlite3.Connection, name: str) -> Optional[dict]:
    row = db.execute("SELECT seq, name, status, reason, raw_rows, rows, counts, drop_counts, labels, row_hash "
                     "FROM drops WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    seq, name, status, reason, raw_rows, rows, counts, drop_counts, labels, row_hash = row
    return {"seq": seq, "name": name, "status": status, "reason": reason, "raw_rows": raw_rows or 0,
            "rows": rows or 0, "counts": json.loads(counts or "{}"), "drop_counts": json.loads(drop_counts or "{}"),
            "labels": json.loads(labels or "[]"), "row_hash": row_hash}


def build_version(cfg: DataConfig, datasets_dir: str | os.PathLike, root: str | os.PathLike, seed: int,
                  source: str = "drops") -> Optional[PreparedDataset]:
    """A new dataset version holding every valid drop so far, or None when no drop added rows since the last."""
    root, datasets_dir = Path(root), Path(datasets_dir)
    with _index(root) as db:
        last = db.execute("SELECT version, upto_drop, labels, counts, drop_counts, raw_rows FROM versions "
                          "ORDER BY seq DESC LIMIT 1").fetchone()
        parent, upto, labels, counts, drop_counts, raw_rows = (
            (last[0], last[1], json.loads(last[2]), json.loads(last[3]), json.loads(last[4]), last[5]) if last
            else (None, 0, [], dict.fromkeys(SPLITS, 0), {}, 0))
        new = [_drop_record(db, n) for (n,) in db.execute(
            "SELECT name FROM drops WHERE seq > ? AND status = 'valid' ORDER BY seq", (upto,)).fetchall()]
        if not any(d["rows"] for d in new):
            return None
        new_labels = sorted(set(labels).union(*(d["labels"] for d in new)))
        if len(new_labels) < 2:
            return None  # a classifier needs two classes: wait for more drops
        digest = hashlib.sha256(json.dumps({"parent": parent, "labels": new_labels}).encode("utf-8"))
        for d in new:
            if d["rows"]:
                digest.update(f"{d['name']}:{d['row_hash']}\n".encode())
        version = digest.hexdigest()[:VERSION_CHARS]
        for d in new:
            for split, n in d["counts"].items():
                counts[split] = counts.get(split, 0) + n
            for reason, n in d["drop_counts"].items():
                drop_counts[reason] = drop_counts.get(reason, 0) + n
            raw_rows += d["raw_rows"]
        included = [(seq, name) for seq, name in db.execute(
            "SELECT seq, name FROM drops WHERE seq <= ? AND status = 'valid' AND rows > 0 ORDER BY seq",
            (new[-1]["seq"],)).fetchall()]
        parts = _ensure_parts(root, included, new_labels)
        final = datasets_dir / version
        if not (final / META).is_file():
            meta = {"version": version, "labels": new_labels, "counts": counts, "drop_counts": drop_counts,
                    "source": source, "line": DROPS_LINE, "label": DROPS_LINE, "num_raw_rows": raw_rows,
                    "created_at": datetime.now(timezone.utc).isoformat(),
                    "text_column": cfg.text_column, "label_column": cfg.label_column, "seed": seed,
                    "params": cfg.model_dump(include={"drop_labels", "validation_fraction", "test_fraction"}),
                    "incremental": {"parent": parent, "new_drops": [d["name"] for d in new],
                                    "num_drops": len(included)}}
            _write_linked_version(datasets_dir, final, parts, meta)
        mark_latest(datasets_dir, DROPS_LINE, version)
        atomic_write_text(datasets_dir / LATEST, version)
        db.execute("INSERT INTO versions (version, upto_drop, labels, counts, drop_counts, raw_rows, created_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (version, new[-1]["seq"], json.dumps(new_labels), json.dumps(counts),
                                                    json.dumps(drop_counts), raw_rows,
                                                    datetime.now(timezone.utc).isoformat()))
    return PreparedDataset(version, final, new_labels, counts, drop_counts, source, raw_rows, line=DROPS_LINE,
                           label=DROPS_LINE)


def _ensure_parts(root: Path, included: list[tuple[int, str]], labels: list[str]) -> list[Path]:
    """Per-drop part folders with label ids for this label list; only missing ones are written."""
    base = root / "parts" / hashlib.sha256(json.dumps(labels).encode("utf-8")).hexdigest()[:12]
    ids = {label: i for i, label in enumerate(labels)}
    out = []
    for seq, name in included:
        folder = base / _stem(seq, name)
        if not (folder / "test.parquet").is_file():  # written last: its presence marks a complete part
            frame = pd.read_parquet(root / "rows" / f"{_stem(seq, name)}.parquet")
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(base)))
            for split in SPLITS:
                rows = frame[frame["split"] == split]
                pq.write_table(pa.table({
                    "text": pa.array(rows["text"].tolist(), pa.string()),
                    "label": pa.array(rows["label"].tolist(), pa.string()),
                    "label_id": pa.array([ids[x] for x in rows["label"].tolist()], pa.int64()),
                }), tmp / f"{split}.parquet")
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)
        out.append(folder)
    return out


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_linked_version(datasets_dir: Path, final: Path, parts: list[Path], meta: dict) -> None:
    """The version folder: each split a folder of hard links (same filesystem) to the parts, in drop order."""
    datasets_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=datasets_dir))
    try:
        for split in SPLITS:
            folder = tmp / f"{split}.parquet"
            folder.mkdir()
            for part in parts:
                target = folder / f"{part.name}.parquet"
                try:
                    os.link(part / f"{split}.parquet", target)
                except OSError:
                    shutil.copyfile(part / f"{split}.parquet", target)  # another filesystem: copy
        atomic_write_json(tmp / META, meta)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def drop_names(root: str | os.PathLike) -> dict[str, str]:
    """Every drop recorded in the index and its status (for reports and tests)."""
    with _index(Path(root)) as db:
        return dict(db.execute("SELECT name, status FROM drops ORDER BY seq").fetchall())


__all__ = ["DROP_REASONS", "assign_split", "build_version", "drop_names", "ingest_drop"]
