"""Promotion to current_model: verified releases, atomic swaps, history, rollback and concurrency."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.release.deploy import current_release, deploy, history, rollback
from nexa_core.release.packaging import build_package
from tests.helpers_runs import make_finished_run, make_layout

REPO_ROOT = Path(__file__).resolve().parents[1]
A, B, C = "alpha_20260101_000000", "beta_20260102_000000", "gamma_20260103_000000"


@pytest.fixture
def layout(tmp_path):
    return make_layout(tmp_path)


def _packaged(layout, run_id, labels=("neg", "pos")) -> str:
    make_finished_run(layout, run_id, label_names=labels)
    build_package(layout, run_id)
    return run_id


def _current(layout) -> Path:
    return layout.deploy_dir / "current_model"


def test_deploy_serves_a_loadable_model(layout):
    from transformers import pipeline

    _packaged(layout, A, labels=("sad", "happy"))
    current = deploy(layout, A)

    assert current == _current(layout)
    assert current.is_symlink()
    assert os.readlink(current) == f"releases/{A}/model"  # relative: the durable folder can move
    assert (current / "config.json").is_file() and (current / "model.safetensors").is_file()
    assert (layout.deploy_dir / "releases" / A / "SHA256SUMS").is_file()
    assert current_release(layout) == A

    classify = pipeline("text-classification", model=str(current), device="cpu")
    prediction = classify("the movie was great")[0]
    assert prediction["label"] in {"sad", "happy"}
    assert 0.0 <= prediction["score"] <= 1.0

    [record] = history(layout)
    assert record["action"] == "deploy" and record["run_id"] == A and record["previous_run_id"] is None
    stamp = datetime.fromisoformat(record["deployed_at"].replace("Z", "+00:00"))
    assert stamp.utcoffset().total_seconds() == 0


def test_relative_links_survive_moving_the_durable_folder(layout, tmp_path):
    _packaged(layout, A)
    deploy(layout, A)
    moved = tmp_path / "mounted-elsewhere"
    shutil.move(str(layout.durable), str(moved))
    current = moved / "deploy" / "current_model"
    assert (current / "config.json").is_file()
    assert current_release(Layout(tmp_path / "scratch", moved, tmp_path / "shared")) == A


def test_deploy_a_then_b_then_rollback_returns_to_a(layout):
    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, A)
    deploy(layout, B)
    assert current_release(layout) == B
    assert json.loads((_current(layout) / "config.json").read_text())["id2label"]  # B's model is being served

    assert rollback(layout) == A
    assert current_release(layout) == A
    assert os.readlink(_current(layout)) == f"releases/{A}/model"
    assert [(r["action"], r["run_id"], r["previous_run_id"]) for r in history(layout)] == [
        ("deploy", A, None),
        ("deploy", B, A),
        ("rollback", A, B),
    ]
    # A was the first deployment: there is nothing before it.
    with pytest.raises(NexaError, match="nothing to roll back to"):
        rollback(layout)
    assert current_release(layout) == A
    assert len(history(layout)) == 3


def test_rollback_walks_back_through_history(layout):
    for run_id in (A, B, C):
        _packaged(layout, run_id)
    deploy(layout, A)
    deploy(layout, B)
    deploy(layout, C)
    assert rollback(layout) == B
    assert rollback(layout) == A
    deploy(layout, C)
    assert rollback(layout) == A  # undo of the latest deploy still in effect


def test_rollback_with_nothing_deployed_or_nothing_before(layout):
    with pytest.raises(NexaError, match="nothing to roll back"):
        rollback(layout)
    _packaged(layout, A)
    deploy(layout, A)
    with pytest.raises(NexaError, match="nothing to roll back to"):
        rollback(layout)
    assert current_release(layout) == A
    assert [r["action"] for r in history(layout)] == ["deploy"]


def test_existing_verified_release_is_reused(layout):
    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, A)
    deploy(layout, B)
    layout.package_path(A).unlink()  # the release folder alone is enough now
    deploy(layout, A)
    assert current_release(layout) == A
    assert len(history(layout)) == 3


def test_tampered_release_is_refused_and_current_model_kept(layout):
    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, A)
    deploy(layout, B)
    (layout.deploy_dir / "releases" / A / "model" / "config.json").write_text("{}")
    with pytest.raises(NexaError, match=r"checksum mismatch for member 'model/config\.json'"):
        deploy(layout, A)
    with pytest.raises(NexaError, match=r"checksum mismatch"):
        rollback(layout)
    assert current_release(layout) == B
    assert len(history(layout)) == 2


def test_deploy_without_a_package_names_it(layout):
    make_finished_run(layout, A)
    with pytest.raises(NexaError, match=rf"no package for run {A} at .*packages/{A}\.tar\.gz"):
        deploy(layout, A)
    assert not _current(layout).exists() and not _current(layout).is_symlink()
    assert history(layout) == []


def test_corrupt_package_is_never_deployed(layout):
    _packaged(layout, A)
    layout.package_path(A).write_bytes(b"garbage")
    with pytest.raises(NexaError, match="differs from the .* recorded when it was built"):
        deploy(layout, A)
    assert not (layout.deploy_dir / "releases" / A).exists()
    assert current_release(layout) is None


@pytest.mark.parametrize("bad", ["../x", "a/b_20260101_000000", "../../etc_20260101_000000", ""])
def test_invalid_run_ids_are_rejected(layout, bad):
    with pytest.raises(NexaError, match="run id"):
        deploy(layout, bad)
    assert not layout.deploy_dir.exists() or list(layout.deploy_dir.rglob("*")) == []


def test_history_tolerates_a_torn_last_line(layout):
    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, A)
    with open(layout.deploy_dir / "history.jsonl", "a") as fh:
        fh.write('{"action": "dep')  # an interrupted append
    assert [r["run_id"] for r in history(layout)] == [A]
    deploy(layout, B)
    assert [r["run_id"] for r in history(layout)] == [A, B]
    assert rollback(layout) == A


_DEPLOY_SCRIPT = """
import sys
from pathlib import Path
from nexa_core.release.deploy import deploy
from nexa_core.common.layout import Layout
root = Path(sys.argv[1])
layout = Layout(root / "scratch", root / "durable", root / "shared")
for _ in range(int(sys.argv[3])):
    deploy(layout, sys.argv[2])
"""


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_concurrent_promotions_never_expose_a_partial_current_model(layout, tmp_path, mode):
    runs = [_packaged(layout, f"run{i}_20260101_00000{i}") for i in range(4)]
    rounds = 3
    deploy(layout, runs[0])  # something is live before the readers start

    current = _current(layout)
    done = threading.Event()
    problems: list[str] = []
    observed = [0]

    def reader():
        while not done.is_set():
            if not ((current / "config.json").is_file() and (current / "model.safetensors").is_file()):
                problems.append(f"incomplete current_model -> {os.readlink(current) if current.is_symlink() else None}")
            observed[0] += 1

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        if mode == "threads":
            start = threading.Barrier(len(runs))
            errors: list[BaseException] = []

            def promote(run_id):
                try:
                    start.wait()
                    for _ in range(rounds):
                        deploy(layout, run_id)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            workers = [threading.Thread(target=promote, args=(r,)) for r in runs]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            assert errors == []
        else:
            env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
            procs = [
                subprocess.Popen([sys.executable, "-c", _DEPLOY_SCRIPT, str(tmp_path), r, str(rounds)], env=env,
                                 stderr=subprocess.PIPE, text=True)
                for r in runs
            ]
            for p in procs:
                _, err = p.communicate(timeout=60)
                assert p.returncode == 0, err
    finally:
        done.set()
        for t in readers:
            t.join()

    assert problems == []
    assert observed[0] > 0
    records = history(layout)
    assert len(records) == 1 + len(runs) * rounds
    assert sorted(r["run_id"] for r in records[1:]) == sorted(runs * rounds)
    # Serialised: each record saw the one before it as the previous deployment.
    for before, after in zip(records, records[1:]):
        assert after["previous_run_id"] == before["run_id"]
    assert current_release(layout) == records[-1]["run_id"]
    # No temp symlinks or half-unpacked releases left behind.
    assert sorted(os.listdir(layout.deploy_dir)) == [".lock", "current_model", "history.jsonl", "releases"]
    assert sorted(os.listdir(layout.deploy_dir / "releases")) == sorted(runs)


# ------------------------------------------------------------------------- killed deploys, recorded digests

_KILLED_SWAP = """
import os, sys
from pathlib import Path
from nexa_core.common.layout import Layout
from nexa_core.release import deploy as d
root = Path(sys.argv[1])
d._point_current_at = lambda layout, run_id: os._exit(9)  # killed after the history write, before the swap
d.deploy(Layout(root / "scratch", root / "durable", root / "shared"), sys.argv[2])
"""


def _history_lines(layout) -> list[tuple[str, str]]:
    lines = (layout.deploy_dir / "history.jsonl").read_text().splitlines()
    return [(r["action"], r["run_id"]) for r in map(json.loads, lines)]


def test_a_deploy_killed_between_history_and_swap_is_not_in_history(layout, tmp_path):
    for run_id in (A, B, C):
        _packaged(layout, run_id)
    deploy(layout, A)
    deploy(layout, B)
    proc = subprocess.run([sys.executable, "-c", _KILLED_SWAP, str(tmp_path), C], cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert _history_lines(layout)[-1] == ("deploy", C)  # the record was written: the kill came after it

    assert current_release(layout) == B
    assert [r["run_id"] for r in history(layout)] == [A, B]  # C never took effect
    assert rollback(layout) == A  # the undo of B, the latest deploy in effect
    assert _history_lines(layout) == [("deploy", A), ("deploy", B), ("rollback", A)]  # the dead record is gone
    deploy(layout, C)
    assert [(r["run_id"], r["previous_run_id"]) for r in history(layout)] == [(A, None), (B, A), (A, B), (C, A)]


def test_a_deploy_killed_before_its_swap_is_left_out_even_between_others(layout):
    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, A)
    path = layout.deploy_dir / "history.jsonl"
    stale = {"action": "deploy", "run_id": B, "previous_run_id": A, "deployed_at": "2026-01-01T00:00:00Z"}
    with open(path, "a") as fh:  # as an older version left it: a dead record with later records after it
        fh.write(json.dumps(stale) + "\n" + json.dumps({**stale, "run_id": A}) + "\n")
    assert [(r["run_id"], r["previous_run_id"]) for r in history(layout)] == [(A, None), (A, A)]
