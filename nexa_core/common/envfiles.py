"""Settings from files: `.env`, then `.env.local`, read into this process's environment (the operations runbook's
provisioning step: "copy `.env` to `.env.local` and adjust endpoints or credentials").

Order: the real environment wins over both files, and `.env.local` wins over `.env`. The files are read from the
current directory (`nexa` is run from the project; `dagster dev`, the code server and the node's systemd worker
start there too), or from `NEXA_ENV_DIR` when set.

Values only go into `os.environ`, where the settings already look (storage: NEXA_S3_PREFIX, endpoints; boto3's
credential chain; MLFLOW_TRACKING_URI; the Dagster resources' EnvVar fields). Nothing here prints, logs or
returns a value, and reports only ever see the environment through the telemetry allow-list, so a credential in
these files reaches no manifest, metadata, log or report.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from nexa_core.common.errors import NexaError

ENV_FILES = (".env", ".env.local")  # later files win


def read_env_files(directory: Path) -> dict[str, str]:
    """The variables the files in `directory` set (`.env.local` over `.env`); absent files set nothing."""
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    for name in ENV_FILES:
        path = directory / name
        if not path.exists():
            continue
        if not path.is_file():
            raise NexaError(f"{path} is not a file; it should hold KEY=value lines (or remove it)")
        try:
            # No ${VAR} expansion: a value is taken as written, the same in every process that reads it.
            values = dotenv_values(path, interpolate=False, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NexaError(f"cannot read {path}: {exc.__class__.__name__}; it should be a UTF-8 text file of "
                            "KEY=value lines") from None  # the message could quote a value: leave it out
        merged.update({k: v for k, v in values.items() if v is not None})  # a bare `KEY` line sets nothing
    return merged


def load_env_files(directory: Path | str | None = None, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set every variable of `.env`/`.env.local` that the environment does not already have. Returns the names
    set (never the values)."""
    env = os.environ if environ is None else environ
    folder = Path(directory if directory is not None else env.get("NEXA_ENV_DIR") or Path.cwd())
    values = read_env_files(folder)
    added = [name for name in values if name not in env]
    for name in added:
        env[name] = values[name]
    return added
