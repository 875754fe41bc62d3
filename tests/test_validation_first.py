"""Inputs are validated before anything is written or launched: model positions against model.max_length, the
precision before torchrun starts its workers, a missing model folder, storage settings and bucket reachability,
and data files with ragged rows or nested values. Each refusal is one stderr line, exit 2, and leaves the storage
tree as it was."""

from __future__ import annotations

import csv
import json
import os
import socket

import pytest

from tests.cli_helpers import nexa, nexa_in_process, tree, write_recipe
from tests.test_storage_s3 import BUCKET, admin_client, aws_env, moto, prefix  # noqa: F401  (fixtures)
from tests.tiny_gpt2 import make_tiny_gpt2

POSITIONS = 128  # the tiny models' max_position_embeddings / n_positions (tests/tiny.py, tests/tiny_gpt2.py)


def _refused(root, *args: str, env: dict | None = None, in_process: bool = True) -> str:
    """Run `nexa`, assert a clean refusal that wrote nothing under `root`, return the one stderr line."""
    before = tree(root)
    if in_process:
        code, _, stderr = nexa_in_process(*args, env=env)
    else:
        proc = nexa(*args, env=env, check=False)
        code, stderr = proc.returncode, proc.stderr
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert tree(root) == before  # no run folder, no dataset version, no launch spec
    return lines[0]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


# ------------------------------------------------------------------------------------------- model and launch


def test_max_length_beyond_the_models_positions_is_refused_before_training(recipe, tmp_path):
    recipe["model"]["max_length"] = POSITIONS + 1
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    line = _refused(tmp_path, "train", "--config", config)
    assert f"model.max_length={POSITIONS + 1}" in line and f"only {POSITIONS} positions" in line
    assert f"set model.max_length={POSITIONS} or less" in line
    assert "only 128 positions" in _refused(tmp_path, "evaluate", "--config", config, "--checkpoint",
                                            recipe["model"]["name_or_path"])
    recipe["model"]["max_length"] = POSITIONS  # the limit itself is allowed: the check is not off by one
    code, _, stderr = nexa_in_process("train", "--config", str(write_recipe(recipe, tmp_path / "ok.yaml")),
                                      "--override", "training.max_steps=1", "--override", "training.epochs=1")
    assert code == 0, stderr


def test_a_causal_teachers_positions_bound_max_length_and_max_new_tokens(recipe, tiny_gpt2, tmp_path):
    recipe["distill"] = {"kind": "causal_lm", "teacher": str(tiny_gpt2)}
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    line = _refused(tmp_path, "distill", "--config", config, "--override", f"model.max_length={POSITIONS * 2}")
    assert f"model.max_length={POSITIONS * 2}: {tiny_gpt2} has only {POSITIONS} positions" in line
    line = _refused(tmp_path, "distill", "--config", config, "--override", f"distill.max_new_tokens={POSITIONS}")
    assert f"distill.max_new_tokens={POSITIONS}" in line and f"below {POSITIONS}" in line


def test_a_bad_precision_with_two_workers_is_one_line_before_torchrun(recipe, tmp_path):
    # fp16 on the CPU is refused on any machine; two workers would each have printed a traceback.
    recipe["training"].update(device="cpu", precision="fp16", distributed={"world_size": 2})
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    line = _refused(tmp_path, "train", "--config", config, in_process=False)
    assert "training.precision=fp16 needs a CUDA GPU" in line
    assert not (tmp_path / "scratch").exists()  # no launch spec: torchrun never started


def test_training_refuses_before_launching_workers_when_called_directly(recipe, tmp_path):
    """The Dagster assets call train() with a prepared dataset: the checks run there too, before torchrun."""
    from nexa_core.common.errors import NexaError
    from nexa_core.common.layout import Layout
    from nexa_core.config import validate_config
    from nexa_core.training.run import train

    recipe["training"].update(device="cpu", precision="bf16", distributed={"world_size": 2})
    cfg = validate_config(recipe)
    with pytest.raises(NexaError, match="training.precision=bf16 is not supported here"):
        train(cfg, tmp_path / "no-dataset-needed", "tiny_20260101_000000", Layout.from_storage(cfg.storage))
    assert not (tmp_path / "scratch").exists()


@pytest.mark.parametrize("missing", ["/nonexistent/model", "./no-such-model-folder"])
def test_a_missing_model_folder_says_the_folder_does_not_exist(recipe, tmp_path, missing):
    recipe["model"]["name_or_path"] = missing
    line = _refused(tmp_path, "train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    assert "model.name_or_path:" in line and "does not exist" in line and "Repo id" not in line


# ------------------------------------------------------------------------------------------------- data files


def _rows(tiny_csv) -> list[list[str]]:
    with open(tiny_csv, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("first", [True, False])
def test_a_ragged_tsv_names_the_line_with_the_wrong_number_of_fields(recipe, tiny_csv, tmp_path, first):
    header, *rows = _rows(tiny_csv)
    lines = ["\t".join(header), *("\t".join(r) for r in rows)]
    bad = 1 if first else 7  # the first data row is read differently by pandas (as an index column)
    lines[bad] += "\textra"
    data = tmp_path / "ragged.tsv"
    data.write_text("\n".join(lines) + "\n")
    recipe["data"]["path"] = str(data)
    line = _refused(tmp_path, "prepare", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    assert f"data.path: {data} is malformed at line {bad + 1}" in line and "class" not in line


@pytest.mark.parametrize(("column", "value", "kind"), [
    ("review", {"text": "nested"}, "an object"), ("review", ["a", "b"], "a list"),
    ("sentiment", {"name": "pos"}, "an object"), ("sentiment", ["pos"], "a list"),
])
def test_a_jsonl_text_or_label_that_is_an_object_or_list_is_refused_with_its_line(
        recipe, tiny_csv, tmp_path, column, value, kind):
    header, *rows = _rows(tiny_csv)
    records = [dict(zip(header, r)) for r in rows]
    records[4][column] = value
    data = tmp_path / "nested.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    recipe["data"]["path"] = str(data)
    line = _refused(tmp_path, "prepare", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    assert f"data.path: {data} line 5: {column!r} is {kind}" in line


def test_nested_values_in_other_columns_are_kept(recipe, tiny_csv, tmp_path):
    header, *rows = _rows(tiny_csv)
    data = tmp_path / "meta.jsonl"
    data.write_text("".join(json.dumps({**dict(zip(header, r)), "meta": {"source": "x"}}) + "\n" for r in rows))
    recipe["data"]["path"] = str(data)
    code, out, stderr = nexa_in_process("prepare", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")))
    assert code == 0, stderr
    assert sum(json.loads(out)["counts"].values()) == len(rows)


# --------------------------------------------------------------------------------------------------- storage


def _storage_env(**extra) -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")} | extra


@pytest.mark.parametrize("command", ["train", "package", "pull"])
def test_a_bad_s3_scheme_is_refused_before_anything_is_written(recipe, tmp_path, command):
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    args = ("train", "--config", config) if command == "train" else (command, "tiny_20260101_000000", "--config", config)
    line = _refused(tmp_path, *args, env={"NEXA_S3_PREFIX": "gs://bucket/nexa"})
    assert "NEXA_S3_PREFIX='gs://bucket/nexa'" in line and "the scheme is 'gs'" in line


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "package", "pull"])
def test_a_missing_bucket_is_refused_before_anything_is_written(recipe, tmp_path, moto, aws_env, command):  # noqa: F811
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    args = ("train", "--config", config) if command == "train" else (command, "tiny_20260101_000000", "--config", config)
    env = _storage_env(NEXA_S3_PREFIX="s3://no-such-bucket-here/nexa", NEXA_S3_ENDPOINT_URL=moto)
    line = _refused(tmp_path, *args, env=env)
    assert "bucket 'no-such-bucket-here' does not exist" in line and "mirror it first" not in line
    assert "testing" not in line  # the dummy credentials never appear


@pytest.mark.slow
def test_an_existing_bucket_passes_the_check(recipe, tmp_path, moto, prefix, aws_env):  # noqa: F811
    from nexa_core.storage.settings import StorageSettings, check_reachable

    check_reachable(StorageSettings(prefix=f"s3://{BUCKET}/{prefix}", endpoint_url=moto))
    line = _refused(tmp_path, "pull", "tiny_20260101_000000", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")),
                    env=_storage_env(NEXA_S3_PREFIX=f"s3://{BUCKET}/{prefix}", NEXA_S3_ENDPOINT_URL=moto))
    assert "no complete mirror" in line  # past the bucket check: the run itself is what is missing


def test_an_unreachable_endpoint_is_refused_before_anything_is_written(recipe, tmp_path, aws_env):  # noqa: F811
    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _storage_env(NEXA_S3_PREFIX="s3://some-bucket/nexa", NEXA_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    line = _refused(tmp_path, "train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")), env=env)
    assert "cannot reach S3 for s3://some-bucket/nexa" in line and "NEXA_S3_ENDPOINT_URL" in line


def test_more_workers_than_gpus_is_refused_before_torchrun(recipe, monkeypatch):
    """Each torchrun worker takes the GPU of its local rank: on a one-GPU node, world_size=2 is refused up front."""
    import torch

    from nexa_core.common.errors import NexaError
    from nexa_core.config import validate_config
    from nexa_core.training.preflight import check_training

    if not torch.cuda.is_available():  # the same node as seen through torch, without a GPU here
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # the fast path asks
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "one-GPU node")
    count = torch.cuda.device_count()
    recipe["training"].update(device="cuda", distributed={"world_size": count + 1})
    with pytest.raises(NexaError, match=rf"world_size: {count + 1} processes on this node but only {count} GPU\(s\) "
                                        rf"visible; set training.distributed.nproc_per_node={count}"):
        check_training(validate_config(recipe))


def test_a_damaged_tokenizer_is_refused_before_torchrun(recipe, tiny_model, tmp_path):
    import shutil

    folder = tmp_path / "bad-tokenizer"
    shutil.copytree(tiny_model, folder)
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:100])  # cut off mid-file, as by an interrupted copy
    recipe["model"]["name_or_path"] = str(folder)
    recipe["training"].update(device="cpu", distributed={"world_size": 2})
    line = _refused(tmp_path, "train", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")), in_process=False)
    assert "model.name_or_path: cannot load a tokenizer" in line


def test_a_hub_teacher_downloaded_before_passes_the_check_offline(recipe, tiny_model, tmp_path):
    """A pinned hub-id teacher is checked in the copy `nexa distill` keeps of it, not on the hub (offline here)."""
    import shutil

    shutil.copytree(tiny_model, tmp_path / "durable" / "teachers" / "someorg--tiny-teacher")
    recipe["distill"] = {"teacher": "someorg/tiny-teacher"}
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    code, out, stderr = nexa_in_process("distill", "--config", config, "--step", "inputs")
    assert code == 0, stderr
    assert json.loads(out)["teacher"]["path"].endswith("someorg--tiny-teacher")
    recipe["model"]["max_length"] = POSITIONS + 1  # and its positions are the ones checked
    line = _refused(tmp_path, "distill", "--config", str(write_recipe(recipe, tmp_path / "r.yaml")), "--step", "inputs")
    assert f"someorg--tiny-teacher has only {POSITIONS} positions" in line


def test_a_training_asset_refuses_unreachable_storage_before_claiming_a_run(recipe, tmp_path, aws_env):  # noqa: F811
    from nexa_dagster.resources import S3StorageResource
    from tests.dagster_helpers import run_job

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = S3StorageResource(prefix="s3://some-bucket/nexa", endpoint_url=f"http://127.0.0.1:{port}")
    result = run_job("training_pipeline", recipe, storage=storage)
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "trained_model"
    assert "cannot reach S3 for s3://some-bucket/nexa" in failure.step_failure_data.user_failure_data.description
    assert not (tmp_path / "durable" / "runs").exists()  # no run was claimed
