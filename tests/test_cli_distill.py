"""`nexa distill`, step by step as a user runs the runbook's four steps, with a tiny 4-layer teacher."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import nexa, write_recipe
from tests.tiny import make_tiny_bert

pytestmark = pytest.mark.slow


def _step(config: str, step: str, *extra: str) -> dict:
    out = nexa("distill", "--config", config, "--step", step, *extra).stdout
    return json.loads(out[out.index("{\n"):])


def test_distill_steps_one_by_one(recipe, tmp_path):
    recipe["model"]["name_or_path"] = str(make_tiny_bert(tmp_path / "base", layers=4))
    recipe["distill"] = {"student_layers": 2, "top_k": 2, "chunk_size": 50}
    config = str(write_recipe(recipe, tmp_path / "distill.yaml"))

    teacher = _step(config, "teacher")["teacher"]
    assert teacher["trained"] is True and teacher["run_id"].startswith("tiny-teacher_")
    inputs = _step(config, "inputs")["inputs"]
    assert inputs["counts"]["train"] > 0
    outputs = _step(config, "outputs")["outputs"]
    assert outputs["computed"] == inputs["counts"]["total"] and outputs["chunks_written"] >= 2
    assert _step(config, "outputs")["outputs"]["computed"] == 0  # nothing left to label for this teacher
    pairs = _step(config, "pairs")["pairs"]
    assert pairs["kept"] + sum(pairs["drops"].values()) == pairs["total"]
    result = _step(config, "student")
    assert result["teacher"]["trained"] is False  # the teacher trained in step one is reused
    comparison = result["comparison"]
    assert comparison["student_parameters"] < comparison["teacher_parameters"]
    assert set(comparison) >= {"student_accuracy", "teacher_accuracy", "agreement", "latency_speedup"}


def test_bad_inputs_version_is_a_one_line_error(recipe, tmp_path):
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    proc = nexa("distill", "--config", config, "--step", "inputs", "--inputs-version", "../v1", check=False)
    assert proc.returncode == 2 and "distill.inputs_version" in proc.stderr
