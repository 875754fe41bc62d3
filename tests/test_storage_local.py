"""LocalStore: the verified-sync semantics on a local folder (round trip, resume, corruption, incomplete)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.storage import COMPLETE_NAME, LocalStore, open_store, parse_s3_uri, validate_key
from tests.storage_helpers import read_tree, write_tree


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": b'{"a": 1}\n',
        "model.safetensors": os.urandom(300_000),
        "checkpoints/step-5/optimizer.pt": os.urandom(70_000),
        "checkpoints/step-5/trainer_state.json": b"{}",
        "logs/deep/er/train_log.jsonl": b'{"loss": 1.0}\n' * 100,
        "empty.txt": b"",
    }
    return write_tree(root, files)


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def src(tmp_path) -> Path:
    root = tmp_path / "src"
    make_tree(root)
    return root


def test_round_trip(store, src, tmp_path):
    result = store.push(src, "runs/r1")
    assert result["stats"]["uploaded"] == 6 and result["stats"]["skipped"] == 0
    assert store.is_complete("runs/r1")
    assert store.complete_keys() == ["runs/r1"]
    record = json.loads((store.root / "runs/r1" / COMPLETE_NAME).read_text())
    assert set(record["files"]) == set(read_tree(src)) and record["kind"] == "folder"
    out = tmp_path / "out" / "r1"
    pulled = store.pull("runs/r1", out)
    assert read_tree(out) == read_tree(src)
    assert pulled["stats"]["downloaded"] == 6
    assert not [p for p in out.parent.iterdir() if p.name != "r1"]  # no temp folders left


def test_resume_uploads_only_missing_or_changed(store, src):
    store.push(src, "runs/r1")
    (store.root / "runs/r1/checkpoints/step-5/optimizer.pt").unlink()  # lost remotely
    (src / "config.json").write_bytes(b'{"a": 2}\n')  # changed locally
    again = store.push(src, "runs/r1")
    assert again["stats"]["uploaded"] == 2 and again["stats"]["skipped"] == 4
    assert again["uploaded"] == ["checkpoints/step-5/optimizer.pt", "config.json"]
    # a removed local file is removed remotely too (the key mirrors the folder)
    (src / "empty.txt").unlink()
    third = store.push(src, "runs/r1")
    assert third["stats"] == {**third["stats"], "uploaded": 0, "skipped": 5, "deleted": 1}
    assert "runs/r1/empty.txt" not in store.list_keys("runs/r1")


def test_corrupted_object_detected_and_nothing_left(store, src, tmp_path):
    store.push(src, "runs/r1")
    victim = store.root / "runs/r1/model.safetensors"
    victim.write_bytes(os.urandom(victim.stat().st_size))  # same size, different bytes
    out = tmp_path / "out" / "r1"
    with pytest.raises(NexaError, match=r"runs/r1/model\.safetensors does not match its completion record") as err:
        store.pull("runs/r1", out)
    assert "\n" not in str(err.value)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_incomplete_refused(store, src, tmp_path):
    store.push(src, "runs/r1")
    (store.root / "runs/r1" / COMPLETE_NAME).unlink()
    assert not store.is_complete("runs/r1")
    with pytest.raises(NexaError, match=r"incomplete upload at .*runs/r1.*re-run the sync"):
        store.pull("runs/r1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_changed_push_drops_old_record_before_objects_change(store, src, tmp_path, monkeypatch):
    store.push(src, "runs/r1")
    (src / "model.safetensors").write_bytes(os.urandom(1000))
    seen = []
    real_put = LocalStore._put_file

    def spying_put(self, path, key, sha):
        seen.append(self.is_complete("runs/r1"))
        return real_put(self, path, key, sha)

    monkeypatch.setattr(LocalStore, "_put_file", spying_put)
    store.push(src, "runs/r1")
    assert seen == [False]
    assert store.is_complete("runs/r1")


def test_single_file(store, tmp_path):
    pkg = tmp_path / "pkg.tar.gz"
    pkg.write_bytes(os.urandom(50_000))
    first = store.push_file(pkg, "packages/r1.tar.gz")
    assert first["stats"]["uploaded"] == 1 and store.is_complete("packages/r1.tar.gz")
    assert store.push_file(pkg, "packages/r1.tar.gz")["stats"]["skipped"] == 1
    out = tmp_path / "got.tar.gz"
    store.pull_file("packages/r1.tar.gz", out)
    assert out.read_bytes() == pkg.read_bytes()
    (store.root / "packages/r1.tar.gz").write_bytes(b"x" * 50_000)
    with pytest.raises(NexaError, match="does not match its completion record"):
        store.pull_file("packages/r1.tar.gz", tmp_path / "again.tar.gz")
    assert not (tmp_path / "again.tar.gz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["got.tar.gz", "pkg.tar.gz", "store"]
    with pytest.raises(NexaError, match="single file"):
        store.pull("packages/r1.tar.gz", tmp_path / "dir")


def test_delete_prefix_removes_record_first(store, src, monkeypatch):
    store.push(src, "runs/r1")
    store.push(src, "runs/r10")
    order = []
    real_delete = LocalStore._delete

    def spying_delete(self, keys):
        order.append(list(keys))
        return real_delete(self, keys)

    monkeypatch.setattr(LocalStore, "_delete", spying_delete)
    assert store.delete_prefix("runs/r1") == 7
    assert order[0] == [f"runs/r1/{COMPLETE_NAME}"]
    assert store.list_keys("runs/r1") == [] and store.is_complete("runs/r10")  # "runs/r1" is not "runs/r10"


def test_pull_target_rules(store, src, tmp_path):
    store.push(src, "runs/r1")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(NexaError, match="not empty; remove it or pass overwrite=True"):
        store.pull("runs/r1", out)
    assert (out / "keep.txt").read_text() == "mine"
    store.pull("runs/r1", out, overwrite=True)
    assert read_tree(out) == read_tree(src)


@pytest.mark.parametrize("key", ["../x", "/abs", "a/../b", "a\\b", "a//b", ""])
def test_bad_keys(store, src, key):
    with pytest.raises(NexaError) as err:
        store.push(src, key)
    assert "\n" not in str(err.value)


def test_validate_key_and_open_store(tmp_path):
    assert validate_key("runs/x/") == "runs/x"
    assert isinstance(open_store(tmp_path / "s"), LocalStore)
    with pytest.raises(NexaError, match="NEXA_S3_PREFIX='gs://b/x'.*scheme is 'gs'"):
        open_store("gs://b/x")
    assert parse_s3_uri("s3://my-bucket/a/b/") == ("my-bucket", "a/b")


def test_push_refuses_non_folder_and_reserved_name(store, tmp_path):
    with pytest.raises(NexaError, match="not a folder"):
        store.push(tmp_path / "missing", "runs/x")
    d = tmp_path / "d"
    d.mkdir()
    (d / COMPLETE_NAME).write_text("{}")
    with pytest.raises(NexaError, match="reserved name"):
        store.push(d, "runs/x")


def test_concurrent_single_file_pushes_into_a_new_folder(store, tmp_path):
    """push_file first removes the key's old record and prunes the folders that leaves empty; another thread's
    upload into that same new folder must not lose its folder in between (the file hand-off pushes in parallel)."""
    import concurrent.futures as cf

    src = tmp_path / "many"
    src.mkdir()
    for i in range(40):
        (src / f"f{i}.bin").write_bytes(bytes([i]) * 100)
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        for round_ in range(15):
            records = list(pool.map(lambda i, r=round_: store.push_file(src / f"f{i}.bin", f"r{r}/deep/f{i}.bin"),
                                    range(40)))
            assert [r["size"] for r in records] == [100] * 40
            assert all(store.is_complete(f"r{round_}/deep/f{i}.bin") for i in range(40))
