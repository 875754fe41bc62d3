"""Assertions on real materializations' metadata (tests/test_asset_metadata.py states the rules)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import dagster as dg

from nexa_core.training.callbacks import read_log
from nexa_core.training.plots import curve_series
from nexa_dagster.metadata import CURVE, MAX_PLOTTED

GPU_FIGURES = ("gpu_hours", "cost_usd", "energy_kwh", "gpu_util_mean_pct", "gpu_memory_peak_mb", "gpu_count")


def numbers(metadata: dict) -> list[str]:
    return [k for k, v in metadata.items() if isinstance(v, (dg.FloatMetadataValue, dg.IntMetadataValue))]


def assert_readable(result, *, gpu: bool = False) -> None:
    """Every materialization and check of a run: at most MAX_PLOTTED numbers, no "None", GPU figures only on a GPU."""
    events = [(str(e.asset_key.path), e.materialization.metadata) for e in result.get_asset_materialization_events()]
    events += [(e.check_name, e.metadata) for e in result.get_asset_check_evaluations()]
    assert events
    for name, meta in events:
        assert len(numbers(meta)) <= MAX_PLOTTED, (name, numbers(meta))
        for key, value in meta.items():
            assert value.value != "None" and '"None"' not in json.dumps(_jsonable(value.value)), (name, key)
        if "telemetry_source" in meta and not gpu:
            assert not set(GPU_FIGURES) & set(meta), (name, set(GPU_FIGURES) & set(meta))
            assert meta["gpu"].value.startswith("none on this machine ("), name


def _jsonable(value):
    if isinstance(value, dg.TableMetadataValue):
        return [r.data for r in value.records]
    return value if isinstance(value, (dict, list, str, int, float, bool)) else str(value)


def raw_metadata(result, asset: str) -> dict[str, dg.MetadataValue]:
    [mat] = result.asset_materializations_for_node(asset)
    return dict(mat.metadata)


def assert_training_curve(metadata: dict) -> Path:
    """The first entry is the curves image, named plainly, embedding the PNG written beside the run, and the run's
    log has both a training and a validation loss series (the data that image plots)."""
    key, value = next(iter(metadata.items()))
    assert key == CURVE and isinstance(value, dg.MarkdownMetadataValue)
    embedded = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", value.value).group(1)
    png = Path(metadata["loss_curve_path"].value)
    assert png.is_file() and base64.b64decode(embedded) == png.read_bytes()
    panels = curve_series(read_log(png.parent / "logs" / "train_log.jsonl"))
    assert panels["loss"]["training loss (raw)"] and panels["loss"]["validation loss"]
    return png
