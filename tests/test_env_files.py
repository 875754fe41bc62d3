"""Settings from files (the operations runbook's provisioning step): `.env`, then `.env.local`, under the real
environment; credentials in them are used, and reach no manifest, run folder, metadata, log or output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nexa_core.common.envfiles import load_env_files
from nexa_core.common.errors import NexaError
from tests.cli_helpers import ROOT, write_recipe

CANARIES = {"AWS_ACCESS_KEY_ID": "AKIACANARYENVFILE001", "AWS_SECRET_ACCESS_KEY": "canary-env-file-secret-0002",
            "HF_TOKEN": "canary-env-file-hf-0003", "NEXA_DB_PASSWORD": "canary-env-file-db-0004"}


def test_env_local_wins_over_env_and_the_real_environment_wins_over_both(tmp_path):
    (tmp_path / ".env").write_text("A=from-env\nB=from-env\nC=from-env\n# comment\nexport D='quoted value'\nBARE\n")
    (tmp_path / ".env.local").write_text("B=from-local\nC=from-local\n")
    environ = {"C": "real"}
    added = load_env_files(tmp_path, environ)
    assert environ == {"A": "from-env", "B": "from-local", "C": "real", "D": "quoted value"}
    assert sorted(added) == ["A", "B", "D"]  # names only, never values
    assert load_env_files(tmp_path, environ) == [] and environ["B"] == "from-local"  # a second load changes nothing


def test_no_files_set_nothing_and_values_are_taken_as_written(tmp_path):
    environ: dict[str, str] = {}
    assert load_env_files(tmp_path, environ) == [] and environ == {}
    (tmp_path / ".env").write_text("URL=http://${HOST}:9000\n")
    assert load_env_files(tmp_path, {"HOST": "h"}) == ["URL"]
    environ = {}
    load_env_files(tmp_path, environ)
    assert environ["URL"] == "http://${HOST}:9000"
    environ = {"NEXA_ENV_DIR": str(tmp_path)}  # the folder, when not the current one
    load_env_files(environ=environ)
    assert environ["URL"] == "http://${HOST}:9000"


def test_an_unreadable_env_file_is_one_line_without_its_content(tmp_path):
    (tmp_path / ".env.local").mkdir()
    with pytest.raises(NexaError, match=r"\.env\.local is not a file"):
        load_env_files(tmp_path, {})
    (tmp_path / ".env.local").rmdir()
    (tmp_path / ".env").write_bytes(b"AWS_SECRET_ACCESS_KEY=\xff\xfecanary-env-file-secret-0002\n")
    with pytest.raises(NexaError) as err:
        load_env_files(tmp_path, {})
    assert "UTF-8" in str(err.value) and "canary" not in str(err.value)


def _clean_env() -> dict[str, str]:
    drop = set(CANARIES) | {"NEXA_SCRATCH", "NEXA_DURABLE", "NEXA_SHARED", "NEXA_ENV_DIR", "NEXA_S3_PREFIX",
                            "AWS_PROFILE", "AWS_SESSION_TOKEN"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_nexa_train_takes_settings_from_the_files_and_writes_no_secret(tiny_model, tiny_csv, tmp_path):
    from tests.conftest import tiny_recipe

    recipe = tiny_recipe(tiny_model, tiny_csv, tmp_path)
    del recipe["storage"]  # the storage roots come from the environment, i.e. from the files
    write_recipe(recipe, tmp_path / "tiny.yaml")
    secrets = "".join(f"{k}={v}\n" for k, v in CANARIES.items())
    (tmp_path / ".env").write_text(f"{secrets}NEXA_SCRATCH={tmp_path}/scratch\nNEXA_SHARED={tmp_path}/shared\n"
                                   f"NEXA_DURABLE={tmp_path}/not-this-one\n")
    (tmp_path / ".env.local").write_text(f"NEXA_DURABLE={tmp_path}/durable\n")
    proc = subprocess.run([sys.executable, "-m", "nexa_core.cli.main", "train", "--config", "tiny.yaml"], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.rindex("{\n"):])
    assert out["manifest"].startswith(f"{tmp_path}/durable/") and not (tmp_path / "not-this-one").exists()

    # The code location reads the same files when it loads (as `dagster dev` and the code server do).
    secret = CANARIES["AWS_SECRET_ACCESS_KEY"]
    probe = f"import os, nexa_dagster.definitions; print(os.environ['NEXA_DURABLE'], os.environ['AWS_SECRET_ACCESS_KEY'] == {secret!r})"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=_clean_env(), capture_output=True,
                            text=True, timeout=300)
    assert loaded.stdout.split() == [f"{tmp_path}/durable", "True"], loaded.stderr[-3000:]

    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and p.name not in (".env", ".env.local")
             and any(v.encode() in p.read_bytes() for v in CANARIES.values())]
    assert not leaks, f"secrets from .env written to {leaks}"
    assert not any(v in proc.stdout + proc.stderr + loaded.stderr for v in CANARIES.values())
