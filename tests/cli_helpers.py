"""Run the real `nexa` entry point in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def write_recipe(recipe: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(recipe))
    return path


def nexa(*args: str, env: dict | None = None, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "nexa_core.cli.main", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=600, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"nexa {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def nexa_in_process(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    """`nexa` through main() in this process: (exit code, stdout, stderr). For refusals, which must happen before
    anything heavy runs: a subprocess costs seconds of imports each time."""
    import contextlib
    import io
    from unittest import mock

    from nexa_core.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own refusals
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def tree(root: Path) -> dict[str, int]:
    """Every path under `root` with its size (folders 0): equal before and after means nothing was written."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0) for p in sorted(root.rglob("*"))}
