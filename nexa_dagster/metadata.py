"""Helpers that turn core results into Dagster metadata (numbers stay numbers so the UI plots them)."""

import base64
from pathlib import Path

import dagster as dg

def numbers(values: dict, prefix: str = "") -> dict[str, dg.MetadataValue]:
    return {f"{prefix}{k}": dg.MetadataValue.float(float(v)) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}

def image(path: Path | None) -> dict[str, dg.MetadataValue]:
    if not path or not Path(path).is_file():
        return {}
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return {"loss_curve": dg.MetadataValue.md(f"![loss curve](data:image/png;base64,{encoded})"),
            "loss_curve_path": dg.MetadataValue.path(str(path))}
