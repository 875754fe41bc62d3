"""Release packages: reproducible, checksummed archives and a paranoid, verified unpack."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file
from nexa_core.release.packaging import build_package, unpack_package
from tests.helpers_runs import make_finished_run, make_layout

RUN = "tiny_20260101_000000"


@pytest.fixture
def layout(tmp_path):
    return make_layout(tmp_path)


@pytest.fixture
def package(layout):
    make_finished_run(layout, RUN)
    return build_package(layout, RUN)


def _members(tarball) -> dict[str, bytes]:
    with tarfile.open(tarball, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _write_tar(path, entries) -> str:
    """Write a .tar.gz from (TarInfo, bytes-or-None) pairs exactly as given (no name sanitising)."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _rewrite(src, dst, *, replace=None, drop=(), extra=()):
    """Copy a package member by member, replacing, dropping or adding members (SHA256SUMS untouched)."""
    replace = replace or {}
    entries = [_file(name, replace.get(name, data)) for name, data in _members(src).items() if name not in drop]
    return _write_tar(dst, entries + list(extra))


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# --------------------------------------------------------------------------------------- build


def test_round_trip_contains_the_run_and_verifies(layout, package, tmp_path):
    assert package == layout.package_path(RUN)
    run_dir = layout.run_dir(RUN)
    members = _members(package)
    final_files = sorted(p.relative_to(run_dir / "final").as_posix() for p in (run_dir / "final").rglob("*") if p.is_file())
    assert {"model/config.json", "model/model.safetensors"} <= set(members)
    assert sorted(members) == sorted(
        [f"model/{f}" for f in final_files] + ["config.yaml", "metrics.json", "manifest.json", "SHA256SUMS"]
    )
    assert members["manifest.json"] == layout.manifest_path(RUN).read_bytes()
    assert members["config.yaml"] == (run_dir / "config.yaml").read_bytes()

    # SHA256SUMS: sorted sha256sum-style lines for every other member, and nothing else.
    lines = members["SHA256SUMS"].decode().splitlines()
    assert lines == sorted(lines, key=lambda line: line.split("  ", 1)[1])
    listed = {}
    for line in lines:
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        assert match, line
        listed[match.group(2)] = match.group(1)
    assert listed == {name: hashlib.sha256(data).hexdigest() for name, data in members.items() if name != "SHA256SUMS"}

    target = tmp_path / "unpacked" / "release"
    assert unpack_package(package, target) == target
    for name, data in members.items():
        assert (target / name).read_bytes() == data
    for f in final_files:
        assert (target / "model" / f).read_bytes() == (run_dir / "final" / f).read_bytes()
    assert _listing(target.parent) == ["release"]  # the temp folder was renamed, nothing left behind


def test_build_is_atomic_and_reproducible(layout, package):
    first = package.read_bytes()
    assert build_package(layout, RUN).read_bytes() == first
    assert _listing(package.parent) == [package.name]  # no temp files left beside it


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3 * 1024 * 1024 + 7)  # spans several chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "remove, expected",
    [
        ("final", r"has no final/ model.*nexa train"),
        ("config.yaml", r"no config\.yaml"),
        ("metrics.json", r"no metrics\.json"),
        ("manifest", r"no manifest for run tiny_20260101_000000 at .*manifests/tiny_20260101_000000\.json"),
    ],
)
def test_build_names_the_missing_piece(layout, remove, expected):
    import shutil

    run_dir = make_finished_run(layout, RUN)
    if remove == "final":
        shutil.rmtree(run_dir / "final")
    elif remove == "manifest":
        layout.manifest_path(RUN).unlink()
    else:
        (run_dir / remove).unlink()
    with pytest.raises(NexaError, match=expected):
        build_package(layout, RUN)
    assert not layout.package_path(RUN).exists()


def test_build_of_unknown_run_fails(layout):
    with pytest.raises(NexaError, match=r"no run folder for run ghost_20260101_000000"):
        build_package(layout, "ghost_20260101_000000")


@pytest.mark.parametrize("bad", ["../x", "a/b_20260101_000000", "/etc/passwd", ""])
def test_build_rejects_invalid_run_ids(layout, bad):
    with pytest.raises(NexaError, match="run id"):
        build_package(layout, bad)
    assert not layout.packages_dir.exists()


# -------------------------------------------------------------------------------------- unpack


def test_tampered_member_fails_checksum_and_leaves_nothing(package, tmp_path):
    tampered = _rewrite(package, tmp_path / "tampered.tar.gz", replace={"model/config.json": b'{"evil": true}'})
    target = tmp_path / "out" / "release"
    with pytest.raises(NexaError, match=r"checksum mismatch for member 'model/config\.json'"):
        unpack_package(tampered, target)
    assert not target.exists()
    assert _listing(target.parent) == []  # the temp folder is gone too


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"drop": ["SHA256SUMS"]}, r"no SHA256SUMS"),
        ({"drop": ["metrics.json"]}, r"member 'metrics\.json' is listed in SHA256SUMS but missing"),
        ({"extra": [_file("model/extra.bin", b"surprise")]}, r"member 'model/extra\.bin' is not listed in SHA256SUMS"),
        ({"replace": {"SHA256SUMS": b"not a checksum line\n"}}, r"SHA256SUMS line 1 is malformed"),
        ({"replace": {"SHA256SUMS": b"%s  ../../outside\n" % (b"0" * 64)}}, r"'\.\./\.\./outside'"),
    ],
)
def test_checksum_list_must_match_the_files_exactly(package, tmp_path, change, expected):
    altered = _rewrite(package, tmp_path / "altered.tar.gz", **change)
    target = tmp_path / "out" / "release"
    with pytest.raises(NexaError, match=expected):
        unpack_package(altered, target)
    assert not target.exists()
    assert _listing(target.parent) == []


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


@pytest.mark.parametrize(
    "entry, expected",
    [
        (_file("../evil", b"pwned"), r"refusing member '\.\./evil': '\.\.' path component"),
        (_file("model/../../evil", b"pwned"), r"refusing member 'model/\.\./\.\./evil'"),
        (_file("/tmp/nexa-abs-evil", b"pwned"), r"refusing member '/tmp/nexa-abs-evil': absolute path"),
        (_link("model/link", "/etc/passwd"), r"refusing member 'model/link': links are not allowed"),
        (_link("model/hard", "metrics.json", tarfile.LNKTYPE), r"refusing member 'model/hard': links are not allowed"),
        (_special("model/fifo", tarfile.FIFOTYPE), r"refusing member 'model/fifo': device or fifo"),
        (_special("model/dev", tarfile.CHRTYPE), r"refusing member 'model/dev': device or fifo"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_extracted(package, tmp_path, entry, expected):
    evil = _rewrite(package, tmp_path / "evil.tar.gz", extra=[entry])
    assert entry[0].name in tarfile.open(evil).getnames()  # the crafted archive really carries the member
    target = tmp_path / "out" / "release"
    with pytest.raises(NexaError, match=expected):
        unpack_package(evil, target)
    assert not target.exists()
    assert _listing(target.parent) == []
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not os.path.exists("/tmp/nexa-abs-evil")


def test_unsafe_member_first_in_archive_is_refused_too(package, tmp_path):
    # The check runs over all members before extraction, whatever their order.
    evil = _write_tar(tmp_path / "evil.tar.gz", [_file("../evil", b"pwned")] + [_file(n, d) for n, d in _members(package).items()])
    target = tmp_path / "out" / "release"
    with pytest.raises(NexaError, match=r"'\.\./evil'"):
        unpack_package(evil, target)
    assert not (tmp_path / "out" / "evil").exists()
    assert _listing(target.parent) == []


@pytest.mark.parametrize(
    "name, reason",
    [("/abs-evil", "absolute path"), ("model/../../../evil", "'..' path component"), ("model/./../../evil", "'..' path component")],
)
def test_path_escapes_are_refused_by_the_data_filter(package, tmp_path, monkeypatch, name, reason):
    # The member passes through tarfile's own `data` filter, and nothing lands outside the target's parent.
    seen = []
    real_filter = tarfile.data_filter
    monkeypatch.setattr(tarfile, "data_filter", lambda member, dest: seen.append(member.name) or real_filter(member, dest))
    before = _listing(tmp_path)
    evil = _rewrite(package, tmp_path / "evil.tar.gz", extra=[_file(name, b"pwned")])
    target = tmp_path / "a" / "b" / "release"
    with pytest.raises(NexaError, match=re.escape(f"refusing member {name!r}: {reason}")):
        unpack_package(evil, target)
    assert name in seen
    assert _listing(target.parent) == []
    assert _listing(tmp_path) == sorted(before + ["evil.tar.gz", "a"])
    assert not (tmp_path / "evil").exists() and not (tmp_path / "a" / "evil").exists()
    assert not os.path.exists("/abs-evil")


@pytest.mark.parametrize("content", [b"this is not gzip at all", b"\x1f\x8b\x08\x00garbage"])
def test_corrupt_archive_is_not_a_valid_package(tmp_path, content):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(content)
    with pytest.raises(NexaError, match="not a valid package archive"):
        unpack_package(bad, tmp_path / "out" / "release")
    assert not (tmp_path / "out" / "release").exists()


def test_truncated_archive_is_refused(package, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(package.read_bytes()[: package.stat().st_size // 2])
    with pytest.raises(NexaError, match="not a valid package archive"):
        unpack_package(cut, tmp_path / "out" / "release")
    assert _listing(tmp_path / "out") == []


def test_missing_archive_is_named(tmp_path):
    with pytest.raises(NexaError, match=r"no package at .*nope\.tar\.gz"):
        unpack_package(tmp_path / "nope.tar.gz", tmp_path / "out")


def test_existing_target_is_never_overwritten(package, tmp_path):
    target = tmp_path / "release"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(NexaError, match="already exists"):
        unpack_package(package, target)
    assert _listing(target) == ["keep.txt"]
    assert _listing(tmp_path) == sorted(["release", "durable"])
