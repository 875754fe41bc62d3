"""Core hand-offs' `metadata()` values as Dagster metadata: numbers stay numbers (the UI plots them across
materializations), paths become path links, dicts and lists JSON, None is left out."""

import base64
from pathlib import Path
from typing import Any

import dagster as dg


def to_metadata(values: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(value)
        elif isinstance(value, Path):
            out[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, (dict, list, tuple)):
            out[key] = dg.MetadataValue.json(value)
        else:
            out[key] = dg.MetadataValue.text(str(value))
    return out


def numbers(values: dict, prefix: str = "") -> dict[str, dg.MetadataValue]:
    return {f"{prefix}{k}": dg.MetadataValue.float(float(v)) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def image(path: Path | None) -> dict[str, dg.MetadataValue]:
    if not path or not Path(path).is_file():
        return {}
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return {"loss_curve": dg.MetadataValue.md(f"![loss curve](data:image/png;base64,{encoded})"),
            "loss_curve_path": dg.MetadataValue.path(str(path))}
