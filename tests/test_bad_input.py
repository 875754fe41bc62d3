"""Bad input is refused in one line naming the field and the fix, exit 2, before anything is written:
recipes that are not UTF-8 or name a key twice, overrides that are not YAML, values that can never be meant
(inf, a minimum above 1), run ids with a trailing newline, and deploy arguments that contradict each other."""

from __future__ import annotations

import pytest
import yaml

from nexa_core.common.errors import NexaError
from nexa_core.common.run_ids import validate_run_id
from tests.cli_helpers import nexa, write_recipe


def _tree(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _refused(*args: str, cwd_root) -> str:
    before = _tree(cwd_root)
    proc = nexa(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert _tree(cwd_root) == before  # nothing written, not even an empty folder
    return lines[0]


def test_a_recipe_that_is_not_utf8_is_one_line(recipe, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump(recipe).replace("tiny", "caf\xe9").encode("latin-1"))
    line = _refused("prepare", "--config", str(path), cwd_root=tmp_path)
    assert "not UTF-8" in line and "save the recipe as UTF-8" in line


def test_a_key_given_twice_in_a_recipe_is_refused(recipe, tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(recipe) + "training:\n  epochs: 1\n")
    line = _refused("prepare", "--config", str(path), cwd_root=tmp_path)
    assert "key 'training' is given twice" in line and "line" in line


@pytest.mark.parametrize(("override", "expected"), [
    ("training.epochs=[1", "'[1' is not a valid YAML value"),
    ("training.epochs=.inf", "training.epochs: Input should be a finite number"),
    ("training.optimizer.lr=.nan", "training.optimizer.lr: Input should be a finite number"),
    ("evaluation.thresholds.accuracy=2.0", "evaluation.thresholds: {'accuracy': 2.0} out of range"),
    ("evaluation.thresholds.macro_f1=-0.1", "out of range"),
])
def test_overrides_that_cannot_be_meant_are_refused(recipe, tmp_path, override, expected):
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    assert expected in _refused("prepare", "--config", config, "--override", override, cwd_root=tmp_path)


@pytest.mark.parametrize("bad", ["tiny_20260101_000000\n", "tiny_20260101_000000\n\n", "\ntiny_20260101_000000", ""])
def test_run_ids_are_matched_in_full(bad):
    with pytest.raises(NexaError, match="is invalid"):
        validate_run_id(bad)


def test_deploy_arguments_that_contradict_each_other_are_refused(tmp_path, monkeypatch):
    for name in ("SCRATCH", "DURABLE", "SHARED"):
        monkeypatch.setenv(f"NEXA_{name}", str(tmp_path / name.lower()))
    assert "run id '' is invalid" in _refused("deploy", "", cwd_root=tmp_path)
    assert "--rollback takes no run id" in _refused("deploy", "tiny_20260101_000000", "--rollback", cwd_root=tmp_path)
    assert "no run tiny_20260101_000000 under" in _refused("deploy", "tiny_20260101_000000", cwd_root=tmp_path)


def test_a_truncated_safetensors_file_is_one_line(recipe, tiny_model, tmp_path):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    recipe["model"]["name_or_path"] = str(broken)
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    proc = nexa("train", "--config", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert "model.name_or_path: cannot load" in line and "complete model folder" in line
    assert not (tmp_path / "durable" / "runs").exists()  # refused before a run folder was made
    proc = nexa("evaluate", "--config", config, "--checkpoint", str(broken), check=False)
    assert proc.returncode == 2 and "cannot load the model" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("content", "expected"), [
    ("[" * 100_000, "nested too deeply to be records"),
    ('{"review": "fine", "sentiment": ' + "[" * 100_000 + "\n", "line 1 is nested too deeply"),
])
def test_json_nested_deeper_than_the_parser_goes_is_one_line(recipe, tmp_path, content, expected):
    data = tmp_path / ("deep.json" if content.startswith("[") else "deep.jsonl")
    data.write_text(content)
    recipe["data"]["path"] = str(data)
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    line = _refused("prepare", "--config", config, cwd_root=tmp_path)
    assert f"data.path: {data}" in line and expected in line


def test_a_package_path_into_a_missing_dotted_package_is_one_line(recipe, tmp_path):
    recipe["data"]["path"] = "package://nosuch.pkg/data.csv"
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    assert "package 'nosuch.pkg' is not installed" in _refused("prepare", "--config", config, cwd_root=tmp_path)


def test_a_negative_prune_size_is_explained(tmp_path, monkeypatch):
    for name in ("SCRATCH", "DURABLE", "SHARED"):
        monkeypatch.setenv(f"NEXA_{name}", str(tmp_path / name.lower()))
    line = _refused("cleanup", "--days", "1", "--prune-size", "-2G", cwd_root=tmp_path)
    assert "only 'larger than' sizes are supported" in line
