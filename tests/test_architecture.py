"""The layout is part of the product: nexa_core's domains are layered with no import cycle (the import contract
in pyproject.toml), nexa_core never imports dagster, `dg check defs` loads the defs folder, the code location
loads without the ML stack, no Python file grows past 400 lines, and ruff is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_import_contract_holds():
    proc = _run(str(BIN / "lint-imports"))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_dg_check_defs_loads_every_definition(tmp_path):
    proc = _run(str(BIN / "dg"), "check", "defs", DAGSTER_HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


def test_the_code_location_loads_without_the_ml_stack(tmp_path):
    code = ("import sys; from nexa_dagster.definitions import defs; "
            "print(sorted(m for m in ('torch', 'transformers', 'pandas', 'pynvml') if m in sys.modules))")
    proc = _run(sys.executable, "-c", code, DAGSTER_HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_no_python_file_is_longer_than_400_lines():
    files = [p for folder in ("nexa_core", "nexa_dagster", "tests", "bench") for p in (ROOT / folder).rglob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    assert len(files) > 100 and long == {}


def test_ruff_is_clean():
    proc = _run(str(BIN / "ruff"), "check", ".")
    assert proc.returncode == 0, proc.stdout[-3000:]
