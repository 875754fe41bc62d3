"""Specification of the teacher input sets (nexa_core.distill.inputs) and DataQuery's distillation readers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import StorageConfig
from nexa_core.data import DataQuery
from nexa_core.data.names import drop_inputs_name, validate_name
from nexa_core.distill.handoff import Teacher
from nexa_core.distill.inputs import build_teacher_inputs, input_id

TRAIN = [("a fine film", "pos"), ("dull and long", "neg"), ("loved every minute", "pos")]


def _prepared(shared: Path, rows=TRAIN, version: str = "0123456789abcdef") -> Path:
    """A prepared dataset version folder as nexa_core.data.prepare writes it."""
    labels = sorted({label for _, label in rows})
    folder = shared / "data" / "processed" / "training" / version
    folder.mkdir(parents=True)
    frame = pd.DataFrame({"text": [t for t, _ in rows], "label": [l for _, l in rows],
                          "label_id": [labels.index(l) for _, l in rows]})
    for split in ("train", "validation", "test"):
        (frame if split == "train" else frame.iloc[:1]).to_parquet(folder / f"{split}.parquet")
    (folder / "dataset.json").write_text(json.dumps({"version": version, "labels": labels,
                                                     "created_at": "2026-11-22T00:00:00+00:00"}))
    return folder


def _root(shared: Path) -> Path:
    return Layout(shared, shared, shared).distill_dir


def _sha16(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- building input sets ------------------------------------------------------------------------------------

def test_distill_dir_sits_next_to_the_training_datasets(tmp_path):
    layout = Layout.from_storage(StorageConfig(scratch=str(tmp_path), durable=str(tmp_path), shared=str(tmp_path)))
    assert layout.distill_dir == tmp_path.resolve() / "data" / "processed" / "distillation"
    assert layout.distill_dir.parent == layout.datasets_dir.parent


def test_inputs_are_every_train_row_with_a_stable_text_id(tmp_path):
    dataset = _prepared(tmp_path)
    root = _root(tmp_path)
    info = build_teacher_inputs(dataset, root, "v1")
    folder = root / "teacher_inputs" / "v1"
    assert info["path"] == str(folder) and info["reused"] is False
    assert sorted(p.name for p in folder.iterdir()) == ["inputs.json", "inputs.parquet"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left

    df = pd.read_parquet(folder / "inputs.parquet")
    assert list(df.columns) == ["input_id", "text", "label", "label_id", "split"]
    assert df["text"].tolist() == [t for t, _ in TRAIN]  # train order kept
    assert df["label"].tolist() == ["pos", "neg", "pos"] and df["label_id"].tolist() == [1, 0, 1]
    assert df["split"].tolist() == ["train"] * 3
    assert df["input_id"].tolist() == [_sha16(t) for t, _ in TRAIN] == [input_id(t) for t, _ in TRAIN]

    meta = json.loads((folder / "inputs.json").read_text())
    assert meta["version"] == "v1"
    assert meta["source_dataset_version"] == "0123456789abcdef" and meta["source_dataset_path"] == str(dataset)
    assert meta["labels"] == ["neg", "pos"]
    assert meta["counts"] == {"train": 3, "unlabelled": 0, "total": 3, "duplicates_dropped": 0,
                              "blank_extras_dropped": 0}
    assert meta["created_at"].endswith("+00:00")
    assert {k: v for k, v in info.items() if k not in ("path", "reused")} == meta


def test_unlabelled_extras_share_ids_across_versions_and_never_duplicate_a_text(tmp_path):
    dataset = _prepared(tmp_path)
    root = _root(tmp_path)
    build_teacher_inputs(dataset, root, "v1")
    extras = pd.DataFrame({"text": ["  a brand new review ", "", None, "dull and long", "a brand new review",
                                    "another one"], "other": range(6)})
    info = build_teacher_inputs(dataset, root, "drop-2026-11-22", extra_texts=extras)
    v1 = pd.read_parquet(root / "teacher_inputs" / "v1" / "inputs.parquet")
    v2 = pd.read_parquet(root / "teacher_inputs" / "drop-2026-11-22" / "inputs.parquet")

    assert v2["input_id"].tolist()[:3] == v1["input_id"].tolist()  # same text, same id, in every version
    tail = v2.iloc[3:]
    assert tail["text"].tolist() == ["a brand new review", "another one"]  # stripped; blanks dropped
    assert tail["label"].isna().all() and tail["label_id"].tolist() == [-1, -1]
    assert tail["split"].tolist() == ["unlabelled"] * 2
    assert tail["input_id"].tolist() == [_sha16("a brand new review"), _sha16("another one")]
    # "dull and long" stays the labelled train row: a text is labelled once per teacher.
    assert v2.loc[v2["text"] == "dull and long", "label"].tolist() == ["neg"]
    assert v2["input_id"].is_unique
    assert info["counts"] == {"train": 3, "unlabelled": 2, "total": 5, "duplicates_dropped": 2,
                              "blank_extras_dropped": 2}


def test_an_input_set_is_immutable_once_written(tmp_path):
    dataset = _prepared(tmp_path)
    root = _root(tmp_path)
    extras = pd.DataFrame({"text": ["unlabelled text"]})
    first = build_teacher_inputs(dataset, root, "v1", extras)
    parquet = root / "teacher_inputs" / "v1" / "inputs.parquet"
    mtime = parquet.stat().st_mtime_ns

    again = build_teacher_inputs(dataset, root, "v1", extras.copy())  # same content: a no-op
    assert again["reused"] is True and again["created_at"] == first["created_at"]
    assert parquet.stat().st_mtime_ns == mtime

    with pytest.raises(NexaError, match=r"distill\.inputs_version: input set 'v1' already exists .* other "
                                        r"content .*choose a new version name"):
        build_teacher_inputs(dataset, root, "v1", pd.DataFrame({"text": ["a different text"]}))
    with pytest.raises(NexaError, match="already exists"):
        build_teacher_inputs(dataset, root, "v1")  # dropping the extras is other content too
    assert parquet.stat().st_mtime_ns == mtime
    assert pd.read_parquet(parquet)["text"].tolist()[-1] == "unlabelled text"

    stray = root / "teacher_inputs" / "stray"
    stray.mkdir()
    with pytest.raises(NexaError, match="inputs.json: unreadable .*not written by build_teacher_inputs"):
        build_teacher_inputs(dataset, root, "stray")


@pytest.mark.parametrize("bad", ["", "..", "a..b", "../x", "/etc", "a/b", "a\\b", "-v1", ".hidden", "v 1",
                                 "x" * 65, "latest", "LATEST", "v1\n", 3, None])
def test_bad_version_names_are_rejected_before_any_path_is_touched(tmp_path, bad):
    dataset = _prepared(tmp_path)
    root = _root(tmp_path)
    with pytest.raises(NexaError, match=r"^distill\.inputs_version: .* is not a valid name; use 1-64 letters"):
        build_teacher_inputs(dataset, root, bad)
    assert not root.exists()


@pytest.mark.parametrize("good", ["v1", "drop-2026-11-22", "A.b_c-1", "0", "x" * 64])
def test_good_version_names(good):
    assert validate_name(good) == good


def test_missing_dataset_and_bad_extras_are_one_line_errors(tmp_path):
    with pytest.raises(NexaError, match=r"train\.parquet not found: dataset_dir must be a prepared dataset"):
        build_teacher_inputs(tmp_path / "nope", _root(tmp_path), "v1")
    dataset = _prepared(tmp_path)
    with pytest.raises(NexaError, match="extra_texts: expected a DataFrame with a 'text' column"):
        build_teacher_inputs(dataset, _root(tmp_path), "v1", pd.DataFrame({"review": ["x"]}))


# --- DataQuery: inputs, outputs, pairs ------------------------------------------------------------------------

def _pipeline(shared: Path) -> dict:
    """Two input sets, two teachers with output chunks, and pairs for two input sets of one teacher."""
    dataset = _prepared(shared)
    root = _root(shared)
    build_teacher_inputs(dataset, root, "v1")
    build_teacher_inputs(dataset, root, "v2", pd.DataFrame({"text": ["extra one", "extra two"]}))
    ids = {t: input_id(t) for t in [t for t, _ in TRAIN] + ["extra one", "extra two"]}

    outputs = root / "teacher_outputs"
    for teacher, stamp in (("teacher-old", 1_000_000), ("run_20261122_101010", 2_000_000)):
        folder = outputs / teacher
        folder.mkdir(parents=True)
        # chunk 0 has the v2-only extras and one train text; chunk 1 re-labels that text (a re-run chunk).
        pd.DataFrame({"input_id": [ids["extra one"], ids["loved every minute"], ids["extra two"]],
                      "predicted": [0, 1, 1], "confidence": [0.6, 0.9, 0.7],
                      "text": ["stale copy"] * 3}).to_parquet(folder / "chunk-00000.parquet")
        pd.DataFrame({"input_id": [ids["loved every minute"], ids["a fine film"]], "predicted": [0, 1],
                      "confidence": [0.1, 0.8], "text": ["stale copy"] * 2}).to_parquet(folder / "chunk-00001.parquet")
        (folder / ".chunk-00002.parquet.tmp.parquet").write_bytes(b"half written")  # an atomic write in flight
        for path in [*folder.iterdir(), folder]:
            os.utime(path, (stamp, stamp))

    pairs = root / "distillation_pairs" / "run_20261122_101010"
    for version, created in (("v2", "2026-11-22T10:00:00+00:00"), ("v1", "2026-11-22T11:00:00+00:00")):
        (pairs / version).mkdir(parents=True)
        pd.DataFrame({"input_id": [ids["a fine film"]], "text": [f"pair of {version}"]}).to_parquet(
            pairs / version / "pairs.parquet")
        (pairs / version / "pairs.json").write_text(json.dumps({"created_at": created}))
    return ids


def test_data_query_reads_inputs_outputs_and_pairs_by_version_and_latest(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    ids = _pipeline(shared)
    monkeypatch.setenv("NEXA_SHARED", str(shared))
    query = DataQuery()  # the distillation dir follows NEXA_SHARED too
    assert query.distill_root == Layout.from_storage(StorageConfig()).distill_dir

    assert query.teacher_input_versions() == ["v1", "v2"]
    assert len(query.get_teacher_inputs("v1")) == 3
    latest = query.get_teacher_inputs()
    assert latest["text"].tolist()[-2:] == ["extra one", "extra two"]  # latest = v2, the newest

    assert query.teachers() == ["teacher-old", "run_20261122_101010"]
    out = query.get_teacher_outputs("v1", "teacher-old")
    # Only v1's inputs, in input order, each once (the first chunk wins), with the inputs' own text and label.
    assert out["input_id"].tolist() == [ids["a fine film"], ids["loved every minute"]]
    assert out["text"].tolist() == ["a fine film", "loved every minute"]
    assert out["label"].tolist() == ["pos", "pos"] and out["predicted"].tolist() == [1, 1]
    assert out["confidence"].tolist() == [0.8, 0.9]
    assert {"input_id", "text", "label", "label_id", "split", "predicted", "confidence"} == set(out.columns)
    default = query.get_teacher_outputs()  # latest inputs (v2), most recent teacher
    assert default["text"].tolist() == ["a fine film", "loved every minute", "extra one", "extra two"]
    assert default["label_id"].tolist() == [1, 1, -1, -1]

    assert query.teachers("pairs") == ["run_20261122_101010"]
    assert query.pair_versions() == ["v2", "v1"]  # by pairs.json created_at, not by name
    assert query.get_distillation_pairs()["text"].tolist() == ["pair of v1"]
    assert query.get_distillation_pairs("v2", "run_20261122_101010")["text"].tolist() == ["pair of v2"]

    explicit = DataQuery(tmp_path / "elsewhere", distill_root=_root(shared))
    assert explicit.get_teacher_inputs("v2").equals(latest)


def test_data_query_distillation_errors_name_what_is_available(tmp_path):
    shared = tmp_path / "shared"
    _pipeline(shared)
    query = DataQuery(shared / "data" / "processed" / "training")
    with pytest.raises(NexaError, match=r"^version: input set 'v9' not found; available: v1, v2$"):
        query.get_teacher_inputs("v9")
    with pytest.raises(NexaError, match="not found; available: v1, v2"):
        query.get_teacher_outputs("v9")
    with pytest.raises(NexaError, match=r"teacher: 'nobody' not found under .*available: teacher-old, "
                                        r"run_20261122_101010"):
        query.get_teacher_outputs("v1", "nobody")
    with pytest.raises(NexaError, match=r"no pairs for input set 'v3' from teacher 'run_20261122_101010'; "
                                        r"available: v2, v1"):
        query.get_distillation_pairs("v3")
    with pytest.raises(NexaError, match="teacher: 'teacher-old' not found .*available: run_20261122_101010"):
        query.get_distillation_pairs("v1", "teacher-old")  # it has outputs but no pairs
    for bad in ("../training", "/etc", "..", "a/b"):
        with pytest.raises(NexaError, match="is not a valid name"):
            query.get_teacher_inputs(bad)
        with pytest.raises(NexaError, match="^teacher: .* is not a valid name"):
            query.get_teacher_outputs("v1", bad)
        with pytest.raises(NexaError, match="is not a valid name"):
            query.get_distillation_pairs(bad)

    # A teacher whose chunks hold nothing for the requested input set is an error, not an empty frame.
    lonely = _root(shared) / "teacher_outputs" / "lonely"
    lonely.mkdir()
    pd.DataFrame({"input_id": ["ffffffffffffffff"], "predicted": [0]}).to_parquet(lonely / "c.parquet")
    with pytest.raises(NexaError, match="teacher 'lonely' has no outputs for input set 'v1'"):
        query.get_teacher_outputs("v1", "lonely")

    empty = DataQuery(tmp_path / "empty" / "training")
    assert empty.teacher_input_versions() == [] and empty.teachers() == []
    with pytest.raises(NexaError, match="no teacher input sets under"):
        empty.get_teacher_inputs()
    with pytest.raises(NexaError, match="no distillation pairs under"):
        empty.get_distillation_pairs()


def test_distill_modules_are_plain_python_and_import_in_any_order():
    code = ("import sys, nexa_core.distill.inputs, nexa_core.data, nexa_core.distill.filters; "
            "print(sorted(m for m in ('dagster', 'datasets', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_drops_input_set_is_built_from_that_stored_dataset_version(tmp_path):
    from types import SimpleNamespace

    from nexa_core.config import validate_config
    from nexa_core.distill import pipeline

    layout = Layout(tmp_path, tmp_path, tmp_path)
    drop = _prepared(tmp_path, rows=[("a new drop review", "neg"), ("another drop review", "pos")],
                     version="fedcba9876543210")
    base = SimpleNamespace(path=_prepared(tmp_path), version="0123456789abcdef")
    cfg = validate_config({"data": {"path": "unused.csv"}, "model": {"name_or_path": "unused"}})
    assert drop_inputs_name("fedcba9876543210") == "drops-fedcba9876543210"

    info = pipeline.teacher_inputs(cfg, layout, base, "drops-fedcba9876543210")
    assert info.source_dataset_version == "fedcba9876543210" and info.counts["train"] == 2
    assert pipeline.inputs_source(layout, "drops-fedcba9876543210").path == drop
    assert pipeline.teacher_inputs(cfg, layout, base, "v1").source_dataset_version == "0123456789abcdef"
    with pytest.raises(NexaError, match="teacher_inputs 'drops-00000000deadbeef': no prepared dataset version"):
        pipeline.teacher_inputs(cfg, layout, base, "drops-00000000deadbeef")
    assert not (layout.distill_dir / "teacher_inputs" / "drops-00000000deadbeef").exists()

    # A teacher whose classes are not the dataset's is refused before it labels anything.
    from transformers import BertConfig

    teacher = tmp_path / "teacher"
    BertConfig(num_labels=3, id2label={0: "neg", 1: "neutral", 2: "pos"}).save_pretrained(teacher)
    with pytest.raises(NexaError, match=r"distill.teacher: the teacher's labels \['neg', 'neutral', 'pos'\] differ"):
        pipeline.teacher_outputs(cfg, layout, Teacher(teacher, "t1", None, trained=False), "drops-fedcba9876543210")
    assert not (layout.distill_dir / "teacher_outputs").exists()
