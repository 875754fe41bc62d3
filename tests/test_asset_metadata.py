"""Readable asset metadata: curves first on training assets, few plotted numbers, rounded, grouped, nothing
absent shown as "None", no GPU figures without a GPU. The slow materializations that check real assets with
tests/metadata_helpers.py (`assert_readable`, `assert_training_curve`) live in test_pipeline_materialize.py,
test_distill_materialize.py and test_distill_causal.py."""

from __future__ import annotations

import json
from pathlib import Path

from nexa_core.config import validate_config
from nexa_core.training.plots import curve_series, loss_curve
from nexa_dagster.metadata import CURVE, MAX_PLOTTED, OVERFLOW, group_of, telemetry_values, to_metadata, training_metadata
from tests.metadata_helpers import GPU_FIGURES, assert_training_curve, numbers


def test_values_are_grouped_rounded_and_absent_ones_left_out():
    meta = to_metadata({"run_id": "r1", "model_path": Path("/m"), "cost_usd": 0.123456789, "wall_seconds": 12.3456,
                        "accuracy": 0.916666666, "resumed_from": None, "per_class": [{"class": "neg", "f1": 0.33333333}]})
    assert list(meta) == ["accuracy", "per_class", "wall_seconds", "cost_usd", "run_id", "model_path"]
    assert meta["accuracy"].value == 0.9167 and meta["wall_seconds"].value == 12.35 and meta["cost_usd"].value == 0.1235
    [row] = meta["per_class"].records
    assert row.data == {"class": "neg", "f1": 0.3333}
    assert group_of("best_checkpoint", "/x/checkpoint-5") == "paths"


def test_at_most_twenty_plotted_numbers_the_rest_in_one_entry():
    meta = to_metadata({f"figure_{i:02d}": float(i) for i in range(25)})
    assert numbers(meta) == [f"figure_{i:02d}" for i in range(MAX_PLOTTED)]
    assert meta[OVERFLOW].value == {f"figure_{i:02d}": float(i) for i in range(MAX_PLOTTED, 25)}


def _summary(gpus: int) -> dict:
    from nexa_core.telemetry.summary import summarize

    info = [{"index": i, "name": "H100", "uuid": f"GPU-{i}", "memory_total_mb": 81559} for i in range(gpus)]
    samples = [{"t": t, "host": {"cpu_util_pct": 50.0, "process_rss_mb": 900.0},
                "gpus": [{"util_pct": 70.0, "power_w": 300.0, "memory_used_mb": 1000.0}] * gpus} for t in (0.0, 10.0)]
    summary = summarize(samples, gpus=info, wall_s=10.0, price_per_gpu_hour=2.0)
    summary["no_gpu_reason"] = None if gpus else "NVML is not available"
    return summary


def test_no_gpu_figures_without_a_gpu_and_the_reason_once():
    meta = to_metadata(telemetry_values(_summary(0)))
    assert not set(GPU_FIGURES) & set(meta)
    assert meta["gpu"].value == "none on this machine (NVML is not available)"
    assert "cpu_util_mean_pct" in meta and not any(k.startswith(("gpu", "cost", "energy"))
                                                    for k in meta["other_telemetry_figures"].value)
    with_gpu = to_metadata(telemetry_values(_summary(2)))
    assert {"gpu_hours", "cost_usd", "gpu_count"} <= set(with_gpu) and "gpu" not in with_gpu
    assert with_gpu["gpu_hours"].value == round(2 * 10 / 3600, 6) and with_gpu["gpus"].records[1].data["uuid"] == "GPU-1"


def test_the_curves_plot_training_and_validation_series(tmp_path):
    log = tmp_path / "run" / "logs" / "train_log.jsonl"
    log.parent.mkdir(parents=True)
    records = [{"step": s, "loss": 1 / s, "loss_ema": 1 / s} for s in range(1, 7)]
    records += [{"step": s, "eval_loss": 0.5 / s, "eval_accuracy": 0.5 + s / 20, "eval_runtime": 0.1} for s in (3, 6)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    panels = curve_series(records)
    assert panels["loss"]["validation loss"] == [(3, 0.5 / 3), (6, 0.5 / 6)]
    assert list(panels["validation"]) == ["validation accuracy"] and len(panels["loss"]["training loss (EMA)"]) == 6
    assert loss_curve(log, tmp_path / "curve.png").stat().st_size > 1000
    meta = training_metadata({"run_id": "r", "accuracy": 0.5}, log)
    assert list(meta)[:2] == [CURVE, "accuracy"] and assert_training_curve(meta) == tmp_path / "run" / "loss_curve.png"


def test_a_pinned_teacher_not_trained_here_says_why_it_has_no_curve(tiny_model, tiny_csv, tmp_path):
    from nexa_core.common.layout import Layout
    from nexa_core.distill import pipeline
    from tests.conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path)
    recipe["distill"] = {"teacher": str(tiny_model)}
    cfg = validate_config(recipe)
    teacher = pipeline.teacher_model(cfg, Layout.from_storage(cfg.storage), dataset=None)
    meta = training_metadata(teacher.metadata(), teacher.log_path, no_curve=teacher.no_curve_reason)
    first_key, first = next(iter(meta.items()))
    assert first_key == CURVE and first.value.startswith(f"pinned teacher {tiny_model} was not trained by a NexaCompute")
    assert meta["pinned"].value is True and "run_id" not in meta and "loss_curve_path" not in meta
