"""Incremental datasets from drops: cross-drop de-duplication, stable hash splits, chained content versions that
DataQuery and the evaluator read, label-id rewrites on a new label, and no re-reading of earlier drops."""

from __future__ import annotations

import pandas as pd
import pytest

from nexa_core.config import DataConfig
from nexa_core.data import DataQuery, incremental
from nexa_core.data.incremental import assign_split, build_version, ingest_drop

CFG = DataConfig(path="unused", text_column="review", label_column="sentiment")


def _write(folder, name, rows):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(path, index=False)
    return path


def _rows(tag, n, labels=("pos", "neg")):
    return [(f"review {tag} number {i}", labels[i % len(labels)]) for i in range(n)]


def _ingest(root, name, rows):
    return ingest_drop(CFG, root / "drops", name, _write(root / "raw", name, rows), seed=7)


def test_drops_fold_into_versions_that_dataquery_reads_and_old_rows_never_move(tmp_path):
    first = _ingest(tmp_path, "a.csv", _rows("a", 200))
    v1 = build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7)
    query = DataQuery(tmp_path / "ds")
    before = query.get_training_dataset(v1.version, "all")
    assert len(before) == 200 and first["rows"] == 200 and set(before["split"]) == {"train", "validation", "test"}

    # The second drop repeats 20 texts (10 with the same label, 10 with the other) and adds 100 new ones.
    repeated = [(t, lab) for t, lab in _rows("a", 10)] + [(t, "neg" if lab == "pos" else "pos")
                                                          for t, lab in _rows("a", 20)[10:]]
    second = _ingest(tmp_path, "b.csv", repeated + _rows("b", 100))
    assert second["rows"] == 100
    assert second["drop_counts"]["seen_before"] == 10 and second["drop_counts"]["conflicts_with_earlier"] == 10
    v2 = build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7)
    after = query.get_training_dataset("latest", "all")
    assert query.resolve("latest") == v2.version != v1.version and len(after) == 300
    old = after[after["text"].str.startswith("review a ")]
    merged = before.merge(old, on=["text", "label", "label_id"], suffixes=("_before", "_after"))
    assert len(merged) == 200 and (merged["split_before"] == merged["split_after"]).all()  # nobody moved
    assert all(assign_split(t, CFG, 7) == s for t, s in zip(after["text"], after["split"]))
    assert not after["text"].duplicated().any()
    assert query.info(v2.version)["incremental"] == {"parent": v1.version, "new_drops": ["b.csv"], "num_drops": 2}

    # Nothing new (a repeat of a drop, an all-duplicate drop): no new version.
    assert _ingest(tmp_path, "a.csv", _rows("zzz", 5))["reused"] is True  # drops are immutable by name
    _ingest(tmp_path, "c.csv", _rows("b", 30))
    assert build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7) is None


def test_the_version_is_a_content_hash_of_the_drops(tmp_path):
    versions = []
    for store in ("one", "two"):
        root = tmp_path / store
        for name, tag in (("a.csv", "a"), ("b.csv", "b")):
            _ingest(root, name, _rows(tag, 60))
            version = build_version(CFG, root / "ds", root / "drops", seed=7).version
        versions.append(version)
    assert versions[0] == versions[1]  # same drops in the same order: same version, anywhere
    other = tmp_path / "other"
    _ingest(other, "a.csv", _rows("a", 60))
    build_version(CFG, other / "ds", other / "drops", seed=7)
    _ingest(other, "b.csv", _rows("b", 60)[:-1] + [("a changed row", "pos")])
    assert build_version(CFG, other / "ds", other / "drops", seed=7).version != versions[0]


def test_a_new_label_rewrites_label_ids_and_the_evaluator_reads_the_folders(tmp_path):
    _ingest(tmp_path, "a.csv", _rows("a", 90, labels=("pos", "neg")))
    build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7)
    _ingest(tmp_path, "b.csv", _rows("b", 90, labels=("mixed", "pos", "neg")))
    version = build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7)
    assert version.labels == ["mixed", "neg", "pos"]
    frame = DataQuery(tmp_path / "ds").get_training_dataset(version.version, "all")
    assert (frame["label_id"] == frame["label"].map({"mixed": 0, "neg": 1, "pos": 2})).all()
    # The training/evaluation readers take the split folders as they take files.
    assert len(pd.read_parquet(version.path / "test.parquet", columns=["text", "label_id"])) == version.counts["test"]


def test_processing_a_drop_never_reads_earlier_drops(tmp_path, monkeypatch):
    for i in range(5):
        _ingest(tmp_path, f"d{i}.csv", _rows(f"d{i}", 40))
        build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7)
    reads = []
    original = pd.read_parquet
    monkeypatch.setattr(incremental.pd, "read_parquet", lambda path, *a, **k: reads.append(str(path)) or
                        original(path, *a, **k))
    _ingest(tmp_path, "new.csv", _rows("new", 40))
    build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7)
    assert all("new.csv" in r for r in reads) and len(reads) == 1  # only the new drop's rows, once


def test_a_malformed_drop_is_recorded_not_raised(tmp_path):
    bad = tmp_path / "raw" / "bad.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"review": "ok", "sentiment": "pos"}\nnot json\n')
    record = ingest_drop(CFG, tmp_path / "drops", "bad.jsonl", bad, seed=7)
    assert record["status"] == "invalid" and "line 2 is not valid JSON" in record["reason"]
    assert build_version(CFG, tmp_path / "ds", tmp_path / "drops", seed=7) is None
    with pytest.raises(Exception, match="not a valid drop name"):
        ingest_drop(CFG, tmp_path / "drops", "../escape.csv", bad, seed=7)
