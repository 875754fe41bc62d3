"""Names and places of teacher-input sets, shared by the data query API and the distillation steps.

Names become folder names and Dagster partition keys: no separators, no "..", never "latest" (reserved).
A set named `drops-<dataset version>` is built from that stored drop dataset version (the drop flow)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from nexa_core.common.errors import NexaError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INPUTS_DIR = "teacher_inputs"
INPUTS_FILE = "inputs.parquet"
INPUTS_META = "inputs.json"
DROP_INPUTS = "drops-"


def validate_name(name: Any, field: str = "distill.inputs_version") -> str:
    """Return `name` if it is a safe version/teacher name, else a NexaError naming `field`."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name or name.lower() == "latest":
        raise NexaError(
            f"{field}: {name!r} is not a valid name; use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, without '..' and not 'latest' (e.g. v1 or drop-2026-11-22)"
        )
    return name


def inputs_dir(root: str | os.PathLike, version: str) -> Path:
    return Path(root) / INPUTS_DIR / validate_name(version)


def drop_inputs_name(dataset_version: str) -> str:
    return f"{DROP_INPUTS}{dataset_version}"


def is_drop_inputs(version: str) -> bool:
    return version.startswith(DROP_INPUTS)
