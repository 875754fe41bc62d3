"""Specification of sharded train splits (`data.shards`): storage, the shard and per-rank readers, and DataQuery's
`get_pretrain_dataset(shard=...)` / `get_training_dataset(..., shard=...)` as the operations runbook uses them."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig, validate_config
from nexa_core.data import DataQuery, prepare_dataset
from nexa_core.data.lines import line_of
from nexa_core.data.shards import rank_shards, read_rank_shards, read_shard
from nexa_core.data.splitting import SPLITS

SEED = 7


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("shards_src") / "reviews.csv"
    rows = [(f"review {i} about thing {label}", label) for label in ("neg", "pos") for i in range(40)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    """One folder with the same data prepared unsharded and with 3 shards (the sharded one prepared last)."""
    root = tmp_path_factory.mktemp("datasets")
    plain = prepare_dataset(DataConfig(path=str(corpus)), root, seed=SEED)
    sharded = prepare_dataset(DataConfig(path=str(corpus), shards=3), root, seed=SEED)
    return root, plain, sharded


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return list(zip(frame["text"], frame["label"], frame["label_id"]))


def _old_version(folder) -> str:
    """The content hash as it was before shards existed: labels, then every split's rows in order."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"labels": json.loads((folder / "dataset.json").read_text())["labels"]}).encode() + b"\n")
    for name in SPLITS:
        digest.update(json.dumps({"split": name}).encode() + b"\n")
        frame = pd.read_parquet(folder / f"{name}.parquet")
        for text, label in zip(frame["text"], frame["label"]):
            digest.update(json.dumps([text, label], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()[:16]


def test_three_shards_hold_exactly_the_unsharded_train_rows_in_order(prepared):
    root, plain, sharded = prepared
    assert sharded.version != plain.version  # another layout, another folder: its own version
    files = sorted(p.name for p in (sharded.path / "train.parquet").iterdir())
    assert files == ["shard-000.parquet", "shard-001.parquet", "shard-002.parquet"]
    shards = [read_shard(sharded.path, i) for i in range(3)]
    assert all(len(s) > 0 for s in shards) and max(map(len, shards)) - min(map(len, shards)) <= 1
    whole = pd.read_parquet(plain.path / "train.parquet")
    assert _rows(pd.concat(shards, ignore_index=True)) == _rows(whole)
    # Readers of the whole split (trainer, evaluator, DataQuery) see the same rows through the folder.
    assert _rows(DataQuery(root).get_training_dataset(sharded.version)) == _rows(whole)
    for split in ("validation", "test"):  # evaluated whole: never sharded
        assert (sharded.path / f"{split}.parquet").is_file()
    assert json.loads((sharded.path / "dataset.json").read_text())["shards"] == 3


def test_get_pretrain_dataset_returns_one_shard_by_version(prepared):
    root, _, sharded = prepared
    query = DataQuery(root, line=sharded.line)
    expected = pd.read_parquet(sharded.path / "train.parquet" / "shard-001.parquet")
    for version in ("latest", sharded.version, sharded.version[:8]):
        for shard in ("001", "1", 1):
            assert _rows(query.get_pretrain_dataset(version, shard=shard)) == _rows(expected)
            assert _rows(query.get_training_dataset(version, "train", shard=shard)) == _rows(expected)
    assert _rows(query.get_pretrain_dataset(shard="001")) == _rows(expected)  # the runbook's call
    assert query.shards() == ["000", "001", "002"]
    assert _rows(query.get_pretrain_dataset()) == _rows(pd.read_parquet(sharded.path / "train.parquet"))


def test_shards_one_keeps_the_existing_layout_version_and_line(prepared, corpus):
    root, plain, _ = prepared
    assert (plain.path / "train.parquet").is_file()
    assert "shards" not in json.loads((plain.path / "dataset.json").read_text())
    assert plain.version == _old_version(plain.path)
    assert line_of(DataConfig(path=str(corpus), shards=1), SEED) == line_of(DataConfig(path=str(corpus)), SEED)
    assert line_of(DataConfig(path=str(corpus), shards=3), SEED) != plain.line
    # An unsharded version has one shard, "000": the whole train split.
    query = DataQuery(root, line=plain.line)
    assert query.shards() == ["000"]
    assert _rows(query.get_pretrain_dataset(shard="000")) == _rows(pd.read_parquet(plain.path / "train.parquet"))


def test_each_rank_reads_only_its_shards_and_together_all_rows(prepared):
    _, _, sharded = prepared
    assert rank_shards(4, 2, 0) == [0, 2] and rank_shards(4, 2, 1) == [1, 3] and rank_shards(3, 1, 0) == [0, 1, 2]
    assert _rows(read_rank_shards(sharded.path, 3, 2)) == _rows(read_shard(sharded.path, 2))
    assert sum(len(read_rank_shards(sharded.path, 3, r)) for r in range(3)) == sharded.counts["train"]
    with pytest.raises(NexaError, match=r"data\.shards=3 is not a multiple of training\.distributed\.world_size=2"):
        read_rank_shards(sharded.path, 2, 0)


def test_bad_shard_input_is_one_line_naming_the_field(prepared):
    root, _, sharded = prepared
    query = DataQuery(root, line=sharded.line)
    cases = [("abc", r"^shard: 'abc' is not a shard number; use 000\.\.002"),
             ("-1", r"^shard: '-1' is not a shard number"),
             ("003", r"^shard: '003' is out of range; this version has 3 shard\(s\)"),
             (True, r"^shard: True is not a shard number")]
    for shard, message in cases:
        with pytest.raises(NexaError, match=message) as err:
            query.get_pretrain_dataset(shard=shard)
        assert "\n" not in str(err.value)
    with pytest.raises(NexaError, match=r"^shard: only the train split is sharded"):
        query.get_training_dataset("latest", "validation", shard="000")
    for value in (0, -2, 1001, "many"):
        with pytest.raises(NexaError, match=r"data\.shards") as err:
            validate_config({"data": {"path": "x.csv", "shards": value}})
        assert "\n" not in str(err.value)


def test_training_refuses_shards_that_ranks_cannot_split_evenly(tmp_path):
    from nexa_core.training.preflight import check_training

    cfg = validate_config({"data": {"path": "x.csv", "shards": 3},
                           "training": {"device": "cpu", "distributed": {"world_size": 2}}})
    with pytest.raises(NexaError, match=r"^data\.shards=3 is not a multiple of training\.distributed\.world_size=2"):
        check_training(cfg)


def _words(texts, truncation, max_length):
    return {"input_ids": [[1] * min(len(t.split()), max_length) for t in texts]}


def test_trainer_gives_each_ddp_rank_only_its_shards_cut_to_equal_length(prepared):
    from nexa_core.training.features import tokenized_train

    _, plain, sharded = prepared
    sizes = [len(read_shard(sharded.path, i)) for i in range(3)]
    for rank in range(3):
        dataset, local = tokenized_train(sharded.path, _words, 16, world_size=3, rank=rank)
        assert local and len(dataset) == min(sizes)
        assert dataset["labels"] == read_shard(sharded.path, rank)["label_id"].tolist()[:min(sizes)]
    # One process, or an unsharded version: the whole split, left to the distributed sampler.
    for folder, world in ((sharded.path, 1), (plain.path, 2)):
        dataset, local = tokenized_train(folder, _words, 16, world_size=world, rank=0)
        assert not local and len(dataset) == sharded.counts["train"]


@pytest.mark.slow
def test_two_torchrun_ranks_train_each_on_its_own_shards(tiny_model, tiny_csv, tmp_path):
    from nexa_core.common.layout import Layout
    from nexa_core.data import dataset_for
    from nexa_core.training.steps import train_run
    from tests.conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path, epochs=1, distributed={"world_size": 2, "seed": 42,
                                                                                   "env": {"OMP_NUM_THREADS": "1"}})
    recipe["data"]["shards"] = 2
    cfg = validate_config(recipe)
    layout = Layout.from_storage(cfg.storage)
    dataset = dataset_for(cfg, layout)
    per_rank = min(len(read_shard(dataset.path, r)) for r in range(2))
    result = train_run(cfg, dataset.path, "tiny_20260101_000000", layout)
    # Each rank's own rows in batches of 16: had the loader split them across the ranks again, half the steps.
    assert result.global_step == -(-per_rank // 16) and per_rank < dataset.counts["train"]
    record = json.loads((layout.run_dir("tiny_20260101_000000") / "run.json").read_text())
    assert record["status"] == "complete" and record["dataset_version"] == dataset.version
