"""Manifests match the users' NexaRunManifest contract exactly and are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import new_run_id, validate_run_id
from nexa_core.release.manifest import RunManifest, read_manifest, schema, write_manifest

SHARED_SCHEMA = Path(__file__).resolve().parents[2] / "shared/schemas/run_manifest.schema.json"


def _manifest(**overrides) -> RunManifest:
    values = dict(run_id="demo_20260101_120000", config="/r/config.yaml", run_dir="/r", metrics={"accuracy": 0.9},
                  checkpoint="/r/final", created_at="2026-01-01T12:00:00+00:00", version="abc", dataset="d@abc",
                  model="Bert")
    return RunManifest(**{**values, **overrides})


def test_packaged_schema_is_the_shared_contract():
    if not SHARED_SCHEMA.exists():
        pytest.skip("shared/ not beside this checkout")
    assert schema() == json.loads(SHARED_SCHEMA.read_text())


def test_written_manifest_validates_with_no_extra_keys(tmp_path):
    layout = Layout(tmp_path / "s", tmp_path / "d", tmp_path / "sh")
    path = write_manifest(layout, _manifest())
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, schema())
    assert set(doc) == set(schema()["properties"]) and path.parent.name == "manifests"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    assert read_manifest(path) == _manifest()


def test_manifest_rejects_extra_keys_and_non_numeric_metrics(tmp_path):
    with pytest.raises(ValueError):
        _manifest(gpu="h100")
    with pytest.raises(ValueError):
        _manifest(metrics={"accuracy": "high"})
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"run_id": "x"}))
    with pytest.raises(NexaError, match="manifest .*m.json: config"):
        read_manifest(bad)


@pytest.mark.parametrize("run_id", ["../x_20260101_000000", "a/b_20260101_000000", "x_2026", "x..y_20260101_000000",
                                    "x_y_20260101_000000", "", "/abs_20260101_000000"])
def test_bad_run_ids_are_rejected(run_id):
    with pytest.raises(NexaError, match="run id"):
        validate_run_id(run_id)


def test_new_run_ids_have_the_documented_shape():
    run_id = new_run_id("minilm-rt")
    assert validate_run_id(run_id) == run_id and run_id.startswith("minilm-rt_")
