"""Lineage and reproduction: the chain from a model back to its raw data (`nexa lineage`), and a recorded run
trained again on its dataset version with its metrics compared (`nexa reproduce`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file
from nexa_core.lineage import UNKNOWN, lineage, reproduce
from nexa_core.lineage.render import chain_text, comparison_table
from nexa_core.lineage.reproduce import compare_metrics
from nexa_core.training.record import update_record
from tests.cli_helpers import nexa_in_process, write_recipe
from tests.conftest import tiny_recipe
from tests.helpers_runs import make_layout
from tests.tiny import make_tiny_bert

REPO = Path(__file__).resolve().parents[1]
STUDENT, TEACHER = "tiny-student_20260102_000000", "tiny-teacher_20260101_000000"
DATASET = "0123456789abcdef"


@pytest.fixture
def layout(tmp_path):
    return make_layout(tmp_path)


def _dataset(layout, version=DATASET, source="reviews.csv") -> Path:
    folder = layout.datasets_dir / version
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"version": version, "labels": ["neg", "pos"], "source": source,
                                                     "line": "reviews", "counts": {"train": 8}}))
    return folder


def _run(layout, run_id, **fields) -> Path:
    run_dir = layout.run_dir(run_id)
    run_dir.mkdir(parents=True)
    update_record(run_dir, run_id=run_id, status="complete", **fields)
    return run_dir


def _lineage(version=DATASET, role="trained", commit="c0ffee", **more) -> dict:
    return {"role": role, "dataset": {"version": version, "source": "reviews.csv"},
            "raw_source": {"source": "reviews.csv", "content_version": "feedface00000000"},
            "base_model": {"name_or_path": "tiny-bert", "revision": None},
            "code": {"commit": commit, "dirty": False}, "environment_fingerprint": f"env-{commit}", **more}


def _deploy_pointer(layout, run_id):
    layout.deploy_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(f"releases/{run_id}/model", layout.deploy_dir / "current_model")


def _student_lineage(tmp_path) -> dict:
    pairs = tmp_path / "pairs.parquet"
    pairs.write_bytes(b"pairs")
    return {"teacher": {"run_id": TEACHER, "version": "t" * 16, "path": "/t/final", "pinned_path": None},
            "student_init": {"path": str(tmp_path / "init"), "cut_from": "/t/final", "layers": 2},
            "teacher_outputs": {"version": "t" * 16, "model_version": "t" * 16, "path": str(tmp_path / "out")},
            "inputs": {"version": "v1", "path": str(tmp_path / "in"), "source_dataset_version": DATASET},
            "pairs": {"version": f"{'t' * 16}/v1", "path": str(pairs), "sha256": sha256_file(pairs)[:16],
                      "kept": 7, "total": 8},
            "kd": {"alpha": 0.5, "temperature": 2.0}}


def test_deployed_student_traces_through_its_teacher_to_the_raw_data(layout, tmp_path):
    _dataset(layout)
    _run(layout, TEACHER, lineage=_lineage(role="teacher", commit="aaa"))
    _run(layout, STUDENT, lineage=_lineage(role="student", commit="bbb", **_student_lineage(tmp_path)))
    _deploy_pointer(layout, STUDENT)

    nodes = lineage(layout)  # default: the deployed model
    assert [(n.kind, n.id) for n in nodes] == [
        ("deployed model", STUDENT), ("student run", STUDENT), ("distillation pairs", f"{'t' * 16}/v1"),
        ("teacher outputs", "t" * 16), ("teacher inputs", "v1"), ("teacher run", TEACHER),
        ("dataset version", DATASET), ("raw source", "reviews.csv")]  # the shared dataset is listed once
    by_kind = {n.kind: n.details for n in nodes}
    assert by_kind["student run"]["code_commit"] == "bbb" and by_kind["student run"]["environment_fingerprint"] == "env-bbb"
    assert by_kind["teacher run"]["code_commit"] == "aaa" and by_kind["teacher run"]["teacher_version"] == "t" * 16
    assert by_kind["distillation pairs"]["kept"] == 7 and by_kind["distillation pairs"]["exists"] is True
    assert by_kind["raw source"]["content_version"] == "feedface00000000"
    assert by_kind["deployed model"]["deployed_at"] == UNKNOWN  # a pointer without a history record
    text = chain_text(nodes)
    assert text.splitlines()[0] == f"deployed model: {STUDENT}" and f"<- teacher run: {TEACHER}" in text


def test_a_run_recorded_before_lineage_reports_unknown_links(layout):
    run_dir = _run(layout, STUDENT, dataset_version=DATASET, model="/scratch/students/x", environment_fingerprint="e1")
    (run_dir / "environment.json").write_text(json.dumps({"git": {"commit": "abc", "dirty": True}}))
    _dataset(layout)

    nodes = lineage(layout, STUDENT)
    assert [(n.kind, n.id) for n in nodes] == [("student run", STUDENT), ("teacher", UNKNOWN),
                                                ("dataset version", DATASET), ("raw source", "reviews.csv")]
    assert nodes[0].details["code_commit"] == "abc (uncommitted changes)"  # from environment.json
    assert nodes[0].details["environment_fingerprint"] == "e1"
    assert nodes[-1].details["content_version"] == UNKNOWN


def test_a_pinned_teacher_and_a_vanished_teacher_run_are_reported_not_fatal(layout, tmp_path):
    pinned = _student_lineage(tmp_path)
    pinned["teacher"] = {"run_id": None, "version": "p" * 16, "path": "/models/t", "pinned_path": "/models/t",
                         "trained_by": None}
    _run(layout, STUDENT, lineage=_lineage(role="student", **pinned))
    kinds = {n.kind: n for n in lineage(layout, STUDENT)}
    assert kinds["pinned teacher"].id == "/models/t" and "teacher run" not in kinds
    assert kinds["dataset version"].details["exists"] is False  # its folder is gone: said, not a crash

    other = "tiny-student_20260103_000000"
    _run(layout, other, lineage=_lineage(role="student", **_student_lineage(tmp_path)))  # TEACHER never existed
    teacher = next(n for n in lineage(layout, other) if n.kind == "teacher run")
    assert teacher.id == TEACHER and "no run" in teacher.details["missing"]


def test_bad_or_missing_runs_are_one_line_errors_exiting_2(layout, tmp_path):
    with pytest.raises(NexaError, match="nothing is deployed"):
        lineage(layout)
    env = {"NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared), "NEXA_SCRATCH": str(layout.scratch)}
    for args in (("lineage", "../etc"), ("lineage", "nope_20260101_000000"), ("reproduce", "nope_20260101_000000")):
        code, out, err = nexa_in_process(*args, env=env)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (args, err)
    assert "no run nope_20260101_000000" in err


def test_reproduce_refuses_a_run_whose_dataset_version_is_gone(layout, tmp_path):
    run_dir = _run(layout, "tiny_20260101_000000", lineage=_lineage())
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(tiny_recipe(tmp_path, tmp_path / "r.csv", tmp_path)))
    with pytest.raises(NexaError, match=f"dataset version {DATASET} of run tiny_20260101_000000 is gone") as err:
        reproduce(layout, "tiny_20260101_000000")
    assert "nexa prepare --config" in str(err.value) and "\n" not in str(err.value)


def test_reproduce_refuses_a_student_whose_pairs_changed(layout, tmp_path):
    parents = _student_lineage(tmp_path)
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "config.json").write_text("{}")
    run_dir = _run(layout, STUDENT, lineage=_lineage(role="student", **parents))
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(tiny_recipe(tmp_path, tmp_path / "r.csv", tmp_path)))
    _dataset(layout)
    Path(parents["pairs"]["path"]).write_bytes(b"other pairs")
    with pytest.raises(NexaError, match="distillation pairs of student .* changed since it trained"):
        reproduce(layout, STUDENT)


def test_comparison_rows_and_table():
    rows = compare_metrics({"accuracy": 0.75, "loss": 0.5, "num_examples": 24, "per_class": {}, "comparison": {}},
                           {"accuracy": 0.75, "loss": 0.5000001, "num_examples": 24},
                           {"train_loss": 0.6, "train_runtime": 3.0}, {"train_loss": 0.6})
    assert [r[0] for r in rows] == ["accuracy", "loss", "num_examples", "train_loss"]  # speed is not compared
    assert rows[0][3] == 0 and rows[1][3] == pytest.approx(1e-7)
    table = comparison_table(rows).splitlines()
    assert table[0].split() == ["metric", "original", "reproduced", "difference"]
    assert table[2].split() == ["loss", "0.5", "0.5", "1.000e-07"]  # a drift below the printed digits still shows
    assert compare_metrics({"accuracy": 0.5}, {}, {}, {}) == [("accuracy", 0.5, None, None)]


# ---- real runs -------------------------------------------------------------------------------------------------


def _nexa(*args: str) -> str:
    code, out, err = nexa_in_process(*args)
    assert code == 0, err[-2000:]
    return out


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, tiny_model, tiny_csv):
    """A tiny teacher -> student distillation (`nexa distill`) with the student deployed (`nexa deploy --force`)."""
    root = tmp_path_factory.mktemp("distilled")
    recipe = tiny_recipe(make_tiny_bert(root / "base", layers=4), tiny_csv, root, epochs=1)  # quality is not tested
    recipe["distill"] = {"student_layers": 2, "top_k": 2, "chunk_size": 50}
    recipe["tracking"] = {"mlflow": {"enabled": False}}
    config = str(write_recipe(recipe, root / "distill.yaml"))
    out = _nexa("distill", "--config", config)
    result = json.loads(out[out.index("{\n"):])
    _nexa("deploy", result["student"]["run_id"], "--force", "--config", config)
    return {"config": config, "result": result, "layout": make_layout(root), "csv": tiny_csv}


@pytest.mark.slow
def test_nexa_lineage_names_the_teacher_run_and_every_version_of_a_deployed_student(distilled):
    layout, result = distilled["layout"], distilled["result"]
    student, teacher = result["student"]["run_id"], result["teacher"]["run_id"]
    chain = json.loads(_nexa("lineage", "--config", distilled["config"], "--format", "json"))
    assert chain["run_id"] == student
    nodes = {n["kind"]: n for n in chain["chain"]}
    assert list(nodes) == ["deployed model", "student run", "distillation pairs", "teacher outputs", "teacher inputs",
                           "teacher run", "dataset version", "raw source"]
    # Each link against the files the distillation actually wrote.
    [pairs_json] = (layout.distill_dir / "distillation_pairs").glob("*/v1/pairs.json")
    pairs_info = json.loads(pairs_json.read_text())
    assert nodes["deployed model"]["id"] == student and nodes["student run"]["id"] == student
    assert nodes["teacher run"]["id"] == teacher and nodes["teacher run"]["details"]["teacher_version"] == \
        result["teacher"]["version"]
    assert nodes["teacher outputs"]["id"] == pairs_info["teacher_version"]
    assert (layout.distill_dir / "teacher_outputs" / pairs_info["teacher_version"]).is_dir()
    assert nodes["teacher inputs"]["id"] == "v1" and Path(nodes["teacher inputs"]["details"]["path"]).is_dir()
    assert nodes["distillation pairs"]["details"]["path"] == pairs_info["path"] == result["pairs"]["path"]
    assert nodes["distillation pairs"]["details"]["kept"] == pairs_info["kept"]
    assert nodes["distillation pairs"]["details"]["sha256"] == sha256_file(pairs_info["path"])[:16]
    assert nodes["dataset version"]["id"] == (layout.datasets_dir / "LATEST").read_text().strip()
    assert nodes["raw source"]["details"]["content_version"] == sha256_file(distilled["csv"])[:16]
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for kind, run_id in (("student run", student), ("teacher run", teacher)):
        environment = json.loads((layout.run_dir(run_id) / "environment.json").read_text())
        assert nodes[kind]["details"]["environment_fingerprint"] == environment["fingerprint"]
        assert nodes[kind]["details"]["code_commit"].split()[0] == commit
    teacher_record = json.loads((layout.run_dir(teacher) / "run.json").read_text())
    assert teacher_record["lineage"]["role"] == "teacher"
    text = _nexa("lineage", "--config", distilled["config"])  # the default: the deployed model, as text
    for value in (student, teacher, pairs_info["teacher_version"], pairs_info["path"], nodes["dataset version"]["id"]):
        assert value in text


@pytest.mark.slow
def test_nexa_reproduce_of_a_student_gives_identical_metrics(distilled):
    student = distilled["result"]["student"]["run_id"]
    out = _nexa("reproduce", student, "--config", distilled["config"], "--format", "json")
    report = json.loads(out[out.index("{\n"):])  # after the trainer's own log lines
    assert report["identical"] is True and {m["metric"] for m in report["metrics"]} >= {"accuracy", "train_loss"}
    record = json.loads((distilled["layout"].run_dir(report["run_id"]) / "run.json").read_text())
    assert record["reproduces"] == student and record["lineage"]["role"] == "student"
    assert record["lineage"]["pairs"] == json.loads(
        (distilled["layout"].run_dir(student) / "run.json").read_text())["lineage"]["pairs"]


@pytest.mark.slow
def test_nexa_reproduce_of_a_tiny_cpu_run_gives_identical_metrics(tiny_model, tiny_csv, tmp_path):
    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path, epochs=1)
    recipe["tracking"] = {"mlflow": {"enabled": False}}
    config = str(write_recipe(recipe, tmp_path / "r.yaml"))
    out = _nexa("train", "--config", config)
    run_id = json.loads(out[out.index("{\n"):])["run_id"]

    text = _nexa("reproduce", run_id, "--config", config)
    lines = text[text.index("reproduced "):].strip().splitlines()  # after the trainer's own log lines
    assert lines[0].startswith(f"reproduced {run_id} as tiny-repro_") and lines[-1] == "identical"
    table = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert set(table) >= {"accuracy", "macro_f1", "loss", "num_examples", "train_loss"}
    assert all(row[2] == "0" or float(row[2]) == 0 for row in table.values())
    new_id = lines[0].split()[3]
    layout = make_layout(tmp_path)
    assert json.loads((layout.run_dir(new_id) / "run.json").read_text())["reproduces"] == run_id
    original = json.loads((layout.run_dir(run_id) / "metrics.json").read_text())
    again = json.loads((layout.run_dir(new_id) / "metrics.json").read_text())
    assert again["accuracy"] == original["accuracy"] and again["loss"] == original["loss"]
    assert layout.manifest_path(new_id).is_file()
