"""Run manifests: `runs/manifests/<run_id>.json`, exactly the NexaRunManifest schema users already parse.

Richer detail (train metrics, per-class scores, dataset drops, timings) lives in the run's `run.json`
sidecar and in Dagster metadata; the manifest keeps only the contract's keys.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import validate_run_id


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    config: str
    run_dir: str
    metrics: dict[str, float]
    checkpoint: Optional[str] = None
    created_at: str
    version: str
    dataset: str
    model: str


def schema() -> dict:
    return json.loads(resources.files("nexa_core.schemas").joinpath("run_manifest.schema.json").read_text())


def numeric_metrics(report: dict, train_metrics: dict) -> dict[str, float]:
    """The manifest's metrics map holds numbers only: evaluation scores, per-class F1 and training loss."""
    out = {k: float(report[k]) for k in ("accuracy", "macro_f1", "loss") if k in report}
    out.update({f"f1_{name}": float(v["f1"]) for name, v in report.get("per_class", {}).items()})
    for key in ("train_loss", "train_runtime", "train_samples_per_second"):
        if isinstance(train_metrics.get(key), (int, float)):
            out[key] = float(train_metrics[key])
    return out


def write_manifest(layout: Layout, manifest: RunManifest) -> Path:
    import jsonschema

    validate_run_id(manifest.run_id)
    doc = manifest.model_dump()
    jsonschema.validate(doc, schema())  # the contract, checked before anything is written
    return atomic_write_json(layout.manifest_path(manifest.run_id), doc)


def read_manifest(path: str | Path) -> RunManifest:
    path = Path(path)
    try:
        return RunManifest.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise NexaError(f"manifest {path} not found; train the run first (`nexa train`)") from None
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise NexaError(f"manifest {path}: {key}: {first['msg']}; rewrite it with `nexa train`") from None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
