"""Release packages: one verified .tar.gz per finished run, and a safe, verified unpack.

A package holds `model/...` (the run's final/ Hugging Face folder), `config.yaml`, `metrics.json`,
`manifest.json` and `SHA256SUMS` (sha256sum-style lines for every other member). Packages are
byte-for-byte reproducible: members are sorted and carry fixed owners, modes and times.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from nexa_core.common.errors import NexaError
from nexa_core.common.hashing import sha256_file, sha256_stream
from nexa_core.common.layout import Layout
from nexa_core.training.record import read_record, update_record

SUMS_NAME = "SHA256SUMS"
TMP_SUFFIX = ".tmp"  # a package being written: `.<run_id>.tar.gz.<random>.tmp` beside it
UNPACK_SUFFIX = ".unpack"  # a package being unpacked: `.<target name>.<random>.unpack` beside the target
MODEL_PREFIX = "model"
_MAX_SUMS_BYTES = 16 * 1024 * 1024  # SHA256SUMS is read into memory: refuse absurd ones
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_SUM_LINE_RE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError)


# --------------------------------------------------------------------------------------------- build


def _package_sources(layout: Layout, run_id: str) -> dict[str, Path]:
    """Member name -> source file, after checking every piece of the finished run is there."""
    run_dir = layout.run_dir(run_id)  # validates run_id before it touches a path
    if not run_dir.is_dir():
        raise NexaError(f"no run folder for run {run_id} at {run_dir}; train it first with `nexa train`")
    final = run_dir / "final"
    if not final.is_dir():
        raise NexaError(f"run {run_id} has no final/ model at {final}; train it first with `nexa train`")
    sources: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(final):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath) / name
            rel = path.relative_to(final).as_posix()
            if not path.is_file():  # follows symlinks: a link to a regular file is packaged as that file
                raise NexaError(f"run {run_id}: final/{rel} is not a regular file; remove it from {final} and package again")
            if "\n" in rel or "\\" in rel:
                raise NexaError(f"run {run_id}: file name {rel!r} in final/ cannot be packaged; rename it")
            sources[f"{MODEL_PREFIX}/{rel}"] = path
    if not any(name.startswith(f"{MODEL_PREFIX}/") for name in sources):
        raise NexaError(f"run {run_id} has an empty final/ model at {final}; train it first with `nexa train`")
    for name in ("config.yaml", "metrics.json"):
        path = run_dir / name
        if not path.is_file():
            raise NexaError(f"run {run_id} has no {name} at {path}; the run did not finish, train it again with `nexa train`")
        sources[name] = path
    manifest = layout.manifest_path(run_id)
    if not manifest.is_file():
        raise NexaError(f"no manifest for run {run_id} at {manifest}; the run did not finish, train it again with `nexa train`")
    sources["manifest.json"] = manifest
    return sources


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0  # fixed metadata: the same run always gives the same bytes
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _format_sums(sums: dict[str, str]) -> bytes:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())).encode("utf-8")


def build_package(layout: Layout, run_id: str) -> Path:
    """Write `layout.package_path(run_id)` atomically and return it; it is read back and verified first.

    Its sha256 (and that of its SHA256SUMS) is then recorded in the run's run.json as `package`, which deploy
    trusts rather than the package's own checksum list. The temp file is flock'ed while it is written and
    verified, so cleanup can tell a package being built from one a killed process left behind."""
    sources = _package_sources(layout, run_id)
    sums = {name: sha256_file(path) for name, path in sources.items()}
    sums_bytes = _format_sums(sums)
    target = layout.package_path(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
    tmp = Path(tmp_name)
    lock_fd = os.dup(fd)  # the flock lasts until this copy closes, after the rename
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    # SHA256SUMS goes first so a reader can verify while streaming.
                    tar.addfile(_tarinfo(SUMS_NAME, len(sums_bytes)), io.BytesIO(sums_bytes))
                    for name in sorted(sources):
                        path = sources[name]
                        with open(path, "rb") as src:
                            tar.addfile(_tarinfo(name, os.fstat(src.fileno()).st_size), src)
            raw.flush()
            os.fsync(raw.fileno())
        _verify_archive(tmp, expected=sums)
        recorded = {"path": target.relative_to(layout.durable).as_posix(), "sha256": sha256_file(tmp),
                    "size": tmp.stat().st_size, "sums_sha256": hashlib.sha256(sums_bytes).hexdigest()}
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(lock_fd)
    update_record(layout.run_dir(run_id), package=recorded)
    return target


def recorded_package(layout: Layout, run_id: str) -> dict | None:
    """The run's `package` record ({path, sha256, size, sums_sha256}) when it is well formed, else None."""
    try:
        record = read_record(layout.run_dir(run_id))
    except (OSError, ValueError):
        return None
    package = record.get("package") if isinstance(record, dict) else None
    if not isinstance(package, dict) or not all(isinstance(package.get(k), str) and _HEX64_RE.fullmatch(package[k])
                                                for k in ("sha256", "sums_sha256")):
        return None
    return package


# ------------------------------------------------------------------------------------------ checking


def _package_filter(member: tarfile.TarInfo, dest: str, where: str) -> tarfile.TarInfo:
    """tarfile's `data` extraction filter, plus the package rules it does not have.

    The `data` filter keeps every member inside `dest` and refuses special files; on top of it a
    package may hold no links at all (the filter would allow ones pointing inside), and a member
    the filter would have to rename (a leading '/') is refused rather than silently relocated.
    """
    name = member.name
    if member.issym() or member.islnk():
        raise NexaError(f"{where}: refusing member {name!r}: links are not allowed in a package")
    try:
        filtered = tarfile.data_filter(member, dest)
    except tarfile.SpecialFileError:
        raise NexaError(f"{where}: refusing member {name!r}: device or fifo members and other special files are not allowed") from None
    except tarfile.AbsolutePathError:
        raise NexaError(f"{where}: refusing member {name!r}: absolute path") from None
    except tarfile.OutsideDestinationError:
        # Without links, only a '..' component can lead a member out of the folder.
        raise NexaError(f"{where}: refusing member {name!r}: '..' path component leads outside the package folder") from None
    except tarfile.FilterError as exc:
        raise NexaError(f"{where}: refusing member {name!r}: {exc}") from None
    if filtered.name != name:
        raise NexaError(f"{where}: refusing member {name!r}: absolute path")
    return filtered


def _check_members(members: Iterable[tarfile.TarInfo], where: str, dest: str | os.PathLike) -> list[tarfile.TarInfo]:
    """Run every member through `_package_filter` (all of them, before anything is written) and refuse duplicates."""
    seen: set[str] = set()
    checked = []
    for member in members:
        member = _package_filter(member, os.fspath(dest), where)
        if member.isfile():
            name = PurePosixPath(member.name).as_posix()
            if name in seen:
                raise NexaError(f"{where}: refusing member {member.name!r}: it appears more than once")
            seen.add(name)
        checked.append(member)
    return checked


def _parse_sums(data: bytes, where: str) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NexaError(f"{where}: {SUMS_NAME} is not UTF-8 text; rebuild the package") from None
    sums: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _SUM_LINE_RE.match(line)
        if not match:
            raise NexaError(f"{where}: {SUMS_NAME} line {lineno} is malformed (expected '<sha256>  <member>'); rebuild the package")
        digest, name = match.group(1).lower(), match.group(2)
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts:
            raise NexaError(f"{where}: {SUMS_NAME} line {lineno} lists {name!r}, which is not a path inside the "
                            "package; rebuild the package")
        name = path.as_posix()
        if name == SUMS_NAME or name in sums:
            raise NexaError(f"{where}: {SUMS_NAME} lists member {name!r} twice or lists itself; rebuild the package")
        sums[name] = digest
    return sums


def _compare(actual: dict[str, str], sums: dict[str, str], where: str) -> None:
    for name in sorted(actual):
        if name not in sums:
            raise NexaError(f"{where}: member {name!r} is not listed in {SUMS_NAME}; the package was altered, rebuild it")
    for name in sorted(sums):
        if name not in actual:
            raise NexaError(f"{where}: member {name!r} is listed in {SUMS_NAME} but missing; the package is incomplete, rebuild it")
        if actual[name] != sums[name]:
            raise NexaError(
                f"{where}: checksum mismatch for member {name!r} (expected {sums[name]}, got {actual[name]}); "
                "the package is corrupt or was altered, rebuild it"
            )


def _require_file(tarball: Path) -> None:
    if not tarball.is_file():
        raise NexaError(f"no package at {tarball}; build it first with `nexa package <run_id>`")


def _open_file(tarball: Path):
    _require_file(tarball)
    return open(tarball, "rb")


def _open_archive(tarball: Path, fh=None) -> tarfile.TarFile:
    """The archive at `tarball`, or read from `fh` (its open file, which the caller closes)."""
    if fh is None:
        _require_file(tarball)
    try:
        return tarfile.open(tarball, mode="r:gz") if fh is None else tarfile.open(fileobj=fh, mode="r:gz")
    except _ARCHIVE_ERRORS as exc:
        raise NexaError(f"{tarball} is not a valid package archive ({exc}); rebuild it") from None


def _verify_archive(tarball: Path, expected: dict[str, str] | None = None) -> dict[str, str]:
    """Stream through an archive: safe members only, every file matches SHA256SUMS (and `expected`)."""
    where = f"package {tarball}"
    with _open_archive(tarball) as tar:
        try:
            # Nothing is extracted here: the stand-in folder only gives the filter a root to check against.
            members = _check_members(tar.getmembers(), where, tarball.parent / f".{tarball.name}.verify")
            actual: dict[str, str] = {}
            sums_data = None
            for member in members:
                if not member.isfile():
                    continue
                name = PurePosixPath(member.name).as_posix()
                fh = tar.extractfile(member)
                if name == SUMS_NAME:
                    if member.size > _MAX_SUMS_BYTES:
                        raise NexaError(f"{where}: {SUMS_NAME} is implausibly large; rebuild the package")
                    sums_data = fh.read()
                else:
                    actual[name] = sha256_stream(fh)
        except _ARCHIVE_ERRORS as exc:
            raise NexaError(f"{tarball} is not a valid package archive ({exc}); rebuild it") from None
    if sums_data is None:
        raise NexaError(f"{where}: it has no {SUMS_NAME}; rebuild the package")
    sums = _parse_sums(sums_data, where)
    _compare(actual, sums, where)
    if expected is not None and sums != expected:
        raise NexaError(f"{where}: the written archive does not match its sources (a file changed while packaging); package again")
    return sums


def verify_unpacked(root: str | os.PathLike, where: str | None = None) -> dict[str, str]:
    """Check an unpacked package folder: no links, every file listed in SHA256SUMS with a matching hash."""
    root = Path(root)
    where = where or f"release {root}"
    sums_path = root / SUMS_NAME
    if sums_path.is_symlink() or not sums_path.is_file():
        raise NexaError(f"{where}: it has no {SUMS_NAME}; rebuild the package")
    if sums_path.stat().st_size > _MAX_SUMS_BYTES:
        raise NexaError(f"{where}: {SUMS_NAME} is implausibly large; rebuild the package")
    sums = _parse_sums(sums_path.read_bytes(), where)
    actual: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise NexaError(f"{where}: member {rel!r} is a link; links are not allowed in a package")
            if name in filenames:
                if not path.is_file():
                    raise NexaError(f"{where}: member {rel!r} is not a regular file")
                if rel != SUMS_NAME:
                    actual[rel] = sha256_file(path)
    _compare(actual, sums, where)
    return sums


# ----------------------------------------------------------------------------------------- unpack


def unpack_package(tarball: str | os.PathLike, target: str | os.PathLike, *, sha256: str | None = None,
                   fix: str = "rebuild it") -> Path:
    """Extract a package into `target` (which must not exist), refusing unsafe members and verifying checksums.

    With `sha256`, the archive must have that digest (read from the same open file that is then unpacked), or
    it is refused with `fix` as the advice. Everything is extracted into a fresh temp folder beside `target`,
    flock'ed while in use, and renamed into place only after it verified, so `target` either appears complete
    and verified or not at all.
    """
    tarball, target = Path(tarball), Path(target)
    where = f"package {tarball}"
    if target.exists() or target.is_symlink():
        raise NexaError(f"cannot unpack {tarball}: {target} already exists; remove it or pick another target")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _open_file(tarball) as fh:
        if sha256 is not None:
            got = sha256_stream(fh)
            if got != sha256:
                raise NexaError(f"{where}: its sha256 {got[:12]}... differs from the {sha256[:12]}... recorded when it "
                                f"was built (altered or replaced since); {fix}")
            fh.seek(0)
        tar = _open_archive(tarball, fh)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=UNPACK_SUFFIX))
        lock_fd = os.open(tmp, os.O_RDONLY)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)  # in use: cleanup leaves it alone until this process is gone
            with tar:
                try:
                    # Every member is checked before anything is written; the filter runs again on each write.
                    members = _check_members(tar.getmembers(), where, tmp)
                    tar.extractall(tmp, members=members, filter=lambda member, dest: _package_filter(member, dest, where))
                except _ARCHIVE_ERRORS as exc:
                    raise NexaError(f"{tarball} is not a valid package archive ({exc}); rebuild it") from None
                except OSError as exc:
                    raise NexaError(f"{where}: could not extract it into {tmp} ({exc})") from None
            verify_unpacked(tmp, where)
            if target.exists() or target.is_symlink():
                raise NexaError(f"cannot unpack {tarball}: {target} already exists; remove it or pick another target")
            try:
                os.rename(tmp, target)
            except OSError as exc:
                raise NexaError(f"cannot unpack {tarball}: {target} already exists or cannot be created ({exc.strerror})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            os.close(lock_fd)
    return target
