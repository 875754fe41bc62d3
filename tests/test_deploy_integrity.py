"""Package integrity does not trust the package alone: the digest recorded in run.json at packaging time is what
deploy checks (a package or release folder edited together with its SHA256SUMS is refused), and a pulled run brings
its digest along."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.release.deploy import current_release, deploy, history, rollback
from nexa_core.release.packaging import build_package
from tests.helpers_runs import make_layout
from tests.test_deploy import A, B, _packaged, layout  # noqa: F401  (layout: fixture)


def _doctor(package: Path) -> None:
    """Edit a member of the package AND its SHA256SUMS line, so the package agrees with itself."""
    with tarfile.open(package, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    members["model/config.json"] = members["model/config.json"].replace(b'"neg"', b'"NEG"')
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in members.items() if name != "SHA256SUMS"}
    members["SHA256SUMS"] = "".join(f"{sums[n]}  {n}\n" for n in sorted(sums)).encode()
    with tarfile.open(package, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name in ["SHA256SUMS", *sorted(sums)]:
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))


def test_packaging_records_the_package_digest_in_run_json(layout):
    _packaged(layout, A)
    package = layout.package_path(A)
    recorded = json.loads((layout.run_dir(A) / "run.json").read_text())["package"]
    with tarfile.open(package, "r:gz") as tar:
        sums = tar.extractfile("SHA256SUMS").read()
    assert recorded == {"path": f"packages/{A}.tar.gz", "sha256": hashlib.sha256(package.read_bytes()).hexdigest(),
                        "size": package.stat().st_size, "sums_sha256": hashlib.sha256(sums).hexdigest()}


def test_a_package_doctored_with_its_checksums_is_refused_and_current_model_kept(layout):
    from nexa_core.release.packaging import verify_unpacked

    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, B)
    _doctor(layout.package_path(A))
    with tarfile.open(layout.package_path(A), "r:gz") as tar:  # the doctored package agrees with itself
        tar.extractall(layout.scratch / "peek", filter="data")
    verify_unpacked(layout.scratch / "peek")
    with pytest.raises(NexaError) as err:
        deploy(layout, A)
    message = str(err.value)
    assert "\n" not in message and str(layout.package_path(A)) in message and f"nexa package {A}" in message
    assert "recorded when it was built" in message
    assert current_release(layout) == B and [r["run_id"] for r in history(layout)] == [B]
    assert sorted(os.listdir(layout.deploy_dir / "releases")) == [B]  # nothing unpacked, no temp folder left

    build_package(layout, A)  # re-packaged from the run: the untouched package deploys
    deploy(layout, A)
    assert current_release(layout) == A


def test_the_cli_refuses_a_doctored_package_in_one_line(layout):
    from tests.cli_helpers import nexa

    _packaged(layout, A)
    _doctor(layout.package_path(A))
    env = {"NEXA_SCRATCH": str(layout.scratch), "NEXA_DURABLE": str(layout.durable), "NEXA_SHARED": str(layout.shared)}
    proc = nexa("deploy", A, env=env, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "recorded when it was built" in proc.stderr
    assert "Traceback" not in proc.stderr and current_release(layout) is None


def test_a_release_folder_doctored_with_its_checksums_is_refused(layout):
    for run_id in (A, B):
        _packaged(layout, run_id)
    deploy(layout, A)
    deploy(layout, B)
    release = layout.deploy_dir / "releases" / A
    config = release / "model" / "config.json"
    config.write_text(config.read_text().replace('"neg"', '"NEG"'))
    sums = release / "SHA256SUMS"
    lines = [f"{hashlib.sha256(config.read_bytes()).hexdigest()}  model/config.json" if line.endswith("  model/config.json")
             else line for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")
    with pytest.raises(NexaError, match=r"SHA256SUMS is not the one recorded when run .* was packaged"):
        deploy(layout, A)
    with pytest.raises(NexaError, match=r"SHA256SUMS is not the one recorded"):
        rollback(layout)
    assert current_release(layout) == B


def test_a_package_without_a_recorded_digest_is_not_trusted(layout):
    _packaged(layout, A)
    record_path = layout.run_dir(A) / "run.json"
    record = json.loads(record_path.read_text())
    del record["package"]
    record_path.write_text(json.dumps(record))
    with pytest.raises(NexaError, match=rf"no digest recorded for it in .*run\.json .*nexa package {A}"):
        deploy(layout, A)
    assert current_release(layout) is None and not (layout.deploy_dir / "releases" / A).exists()


def test_a_pulled_run_brings_its_recorded_digest_and_deploys(layout, tmp_path):
    from nexa_core.storage.local import LocalStore
    from nexa_core.storage.mirror import mirror_run, pull_run

    _packaged(layout, A)
    store = LocalStore(tmp_path / "mirror")
    mirror_run(store, layout, A)
    elsewhere = make_layout(tmp_path / "machine2")
    pull_run(store, elsewhere, A)
    assert json.loads((elsewhere.run_dir(A) / "run.json").read_text())["package"]["sha256"] == \
        hashlib.sha256(layout.package_path(A).read_bytes()).hexdigest()
    deploy(elsewhere, A)
    assert current_release(elsewhere) == A
