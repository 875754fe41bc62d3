"""Specification of `data.encoding`: undecodable records are dropped and counted, only a mostly-undecodable file
is refused, and other encodings are read when configured."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import DataConfig, StorageConfig, validate_config
from nexa_core.data import prepare_dataset
from nexa_core.data.incremental import ingest_drop
from nexa_core.data.loading import load_raw
from tests.cli_helpers import nexa, write_recipe

LABELS = ("pos", "neg", "neutral")
WORDS = {"pos": "great lovely", "neg": "awful boring", "neutral": "average plain"}
BAD = b"\xff\xfe broken \xe9 bytes"  # never valid UTF-8 (0xff cannot start a sequence)


def _scraped_csv(path, clean: int = 52, bad: int = 8):
    """A 3-class CSV with `bad` records holding non-UTF-8 bytes (13% of 60 by default), the rest clean UTF-8.

    The bad bytes sit in the text, in the label, in an unused column and inside a quoted multi-line field, so
    every record is judged as a whole and quoting still parses around them."""
    lines = [b"text,label,source"]
    for i in range(clean):
        label = LABELS[i % 3]
        lines.append(f'"{WORDS[label]} caf\u00e9 \u2713 {i}",{label},web'.encode())
    for i in range(bad):
        where = i % 4
        text = BAD + f" {i}".encode() if where == 0 else f"fine words {i}".encode()
        label = b"p\xe9s" if where == 1 else b"pos"
        source = b"w\xe8b" if where == 2 else b"web"
        if where == 3:
            text = b'"two\nlines \xc3( ' + f'{i}"'.encode()  # \xc3( is a truncated two-byte sequence
        lines.insert(2 + 7 * i, b",".join([text, label, source]))  # spread among the clean lines
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(path=str(path), **kw)


def test_a_minority_of_undecodable_records_is_dropped_and_counted(tmp_path):
    path = _scraped_csv(tmp_path / "scraped.csv")
    ds = prepare_dataset(_cfg(path), tmp_path / "datasets", seed=0)
    assert ds.drop_counts["bad_encoding"] == 8
    assert sum(ds.counts.values()) == 52 and ds.num_raw_rows == 60
    assert ds.labels == sorted(LABELS)  # no mangled "p?s" label from an undecodable record
    meta = json.loads((ds.path / "dataset.json").read_text(encoding="utf-8"))
    assert meta["drop_counts"]["bad_encoding"] == 8 and meta["num_raw_rows"] == 60
    texts = [t for split in ("train", "validation", "test") for t in pd.read_parquet(ds.path / f"{split}.parquet")["text"]]
    assert len(texts) == 52 and all("caf\u00e9 \u2713" in t for t in texts)  # clean UTF-8 text kept intact


def test_jsonl_and_compressed_files_drop_undecodable_records_too(tmp_path):
    good = [json.dumps({"text": f"{WORDS[LABELS[i % 3]]} {i}", "label": LABELS[i % 3]}).encode() for i in range(9)]
    bad = [b'{"text": "' + BAD + b'", "label": "pos"}', b'{"text": "escaped \\udce9", "label": "neg"}']
    (tmp_path / "d.jsonl").write_bytes(b"\n".join(good + bad) + b"\n")
    frame = load_raw(_cfg(tmp_path / "d.jsonl"))
    assert len(frame) == 9 and frame.attrs["nexa_undecodable_rows"] == 2
    ds = prepare_dataset(_cfg(tmp_path / "d.jsonl"), tmp_path / "datasets", seed=0)
    assert ds.drop_counts["bad_encoding"] == 2 and ds.num_raw_rows == 11

    (tmp_path / "s.csv.gz").write_bytes(gzip.compress(_scraped_csv(tmp_path / "s.csv").read_bytes()))
    ds = prepare_dataset(_cfg(tmp_path / "s.csv.gz"), tmp_path / "datasets", seed=0)
    assert ds.drop_counts["bad_encoding"] == 8 and sum(ds.counts.values()) == 52


def test_a_folder_sums_the_undecodable_records_of_its_files(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    _scraped_csv(folder / "a.csv", clean=30, bad=4)
    _scraped_csv(folder / "b.csv", clean=30, bad=3)
    ds = prepare_dataset(_cfg(folder), tmp_path / "datasets", seed=0)
    assert ds.drop_counts["bad_encoding"] == 7 and ds.num_raw_rows == 67


def test_latin1_is_read_when_configured(tmp_path):
    path = tmp_path / "latin.csv"
    rows = [f"{WORDS[LABELS[i % 3]]} caf\u00e9 cr\u00e8me na\u00efve {i},{LABELS[i % 3]}" for i in range(12)]
    path.write_bytes(("text,label\n" + "\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(NexaError, match=r"data.encoding: .*latin.csv is not valid UTF-8"):
        load_raw(_cfg(path))  # every record: refused, not silently emptied
    ds = prepare_dataset(_cfg(path, encoding="latin-1"), tmp_path / "datasets", seed=0)
    assert ds.drop_counts["bad_encoding"] == 0 and sum(ds.counts.values()) == 12
    assert load_raw(_cfg(path, encoding="latin-1"))["text"].iloc[0] == "great lovely caf\u00e9 cr\u00e8me na\u00efve 0"


def test_a_mostly_undecodable_file_or_header_is_refused_naming_data_encoding(tmp_path):
    path = _scraped_csv(tmp_path / "mostly.csv", clean=4, bad=5)
    with pytest.raises(NexaError) as err:
        load_raw(_cfg(path))
    msg = str(err.value)
    assert msg.startswith("data.encoding: ") and "mostly.csv is not valid UTF-8 at byte" in msg
    assert "in 5 of 9 records" in msg and "set data.encoding" in msg and "\n" not in msg
    # Exactly half still trains on the decodable half: the threshold is "more than half".
    assert len(load_raw(_cfg(_scraped_csv(tmp_path / "half.csv", clean=4, bad=4)))) == 4

    (tmp_path / "header.csv").write_bytes(b"t\xe9xt,label\n" + b"\n".join(b"ok %d,pos" % i for i in range(9)))
    with pytest.raises(NexaError, match=r"data.encoding: .*header.csv is not valid UTF-8 at byte 1 \(line 1\), in its header"):
        load_raw(_cfg(tmp_path / "header.csv"))


@pytest.mark.parametrize("name", ["no-such-codec", "base64"])
def test_an_unknown_or_non_text_codec_is_a_one_line_config_error(tmp_path, name):
    with pytest.raises(NexaError) as err:
        validate_config({"data": {"path": "x.csv", "encoding": name}})
    assert str(err.value).startswith("invalid config: data.encoding: unknown text encoding")
    assert "latin-1" in str(err.value) and "\n" not in str(err.value)


def test_a_drop_with_undecodable_records_is_ingested_with_the_count(tmp_path):
    path = _scraped_csv(tmp_path / "drop-001.csv")
    record = ingest_drop(_cfg(path), tmp_path / "drops", "drop-001.csv", path, seed=0)
    assert record["status"] == "valid" and record["rows"] == 52 and record["raw_rows"] == 60
    assert record["drop_counts"]["bad_encoding"] == 8


def test_nexa_prepare_prints_the_bad_encoding_count(tmp_path):
    path = _scraped_csv(tmp_path / "scraped.csv")
    recipe = {"name": "enc", "data": {"path": str(path)},
              "storage": {k: str(tmp_path / k) for k in ("scratch", "durable", "shared")}}
    proc = nexa("prepare", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    summary = json.loads(proc.stdout)
    assert summary["drops"]["bad_encoding"] == 8 and sum(summary["counts"].values()) == 52

    recipe["data"]["encoding"] = "klingon"
    proc = nexa("prepare", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")), check=False)
    assert proc.returncode == 2 and "data.encoding: unknown text encoding" in proc.stderr


@pytest.mark.slow
def test_nexa_train_trains_on_the_decodable_rows_and_reports_the_drop(tiny_model, tmp_path):
    path = _scraped_csv(tmp_path / "scraped.csv", clean=90, bad=13)
    recipe = {"name": "enc", "data": {"path": str(path)},
              "model": {"name_or_path": str(tiny_model), "max_length": 32},
              "training": {"epochs": 1, "batch_size": 16, "checkpoint": {"every_steps": 5, "keep": 1}},
              "storage": {k: str(tmp_path / k) for k in ("scratch", "durable", "shared")}}
    proc = nexa("train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    first = proc.stdout.splitlines()[0]
    assert first.startswith("starting run ") and first.endswith("(rows dropped: bad_encoding=13)")
    version = first.split(" on dataset ")[1].split()[0]
    datasets_dir = Layout.from_storage(StorageConfig(**recipe["storage"])).datasets_dir
    meta = json.loads((datasets_dir / version / "dataset.json").read_text(encoding="utf-8"))
    assert sum(meta["counts"].values()) == 90 and meta["drop_counts"]["bad_encoding"] == 13
    result = json.loads(proc.stdout[proc.stdout.rindex("{\n"):])  # the summary is printed last
    assert result["run_id"] and 0 <= result["accuracy"] <= 1  # trained and evaluated on the decodable rows
