"""Every formatting decision for asset and check metadata, in one place.

Core hand-offs' `metadata()` give plain values; `to_metadata` orders them by group (quality, speed, cost,
then what the asset is, then paths), rounds floats (4 significant digits, seconds to 2 decimals), leaves absent
values out, keeps numbers numeric so the UI plots them across materializations (at most `MAX_PLOTTED` per
asset: the rest go into one JSON entry), and turns lists of rows into tables. A training asset's metadata opens
with its loss and validation curves (`training_metadata`).
"""

import base64
import math
from pathlib import Path
from typing import Any

import dagster as dg

MAX_PLOTTED = 20  # the UI plots about this many numeric entries per asset; more become unreadable
OVERFLOW = "more_figures"

# Group of a key, by the first group one of whose words it contains (paths are recognised first).
GROUPS = (
    ("quality", ("teacher_vs_student", "accuracy", "f1", "loss", "agreement", "promot", "champion", "challenger",
                 "improvement", "per_class", "num_examples")),
    ("speed", ("seconds", "latency", "throughput", "speedup", "per_second", "global_step", "epoch", "mfu")),
    ("cost", ("gpu", "cost", "energy", "cpu_", "memory", "rss", "power", "temperature", "telemetry")),
)
ORDER = ("quality", "speed", "cost", "about", "paths")
PATH_SUFFIXES = ("_path", "_dir", "_uri", "_checkpoint", "resumed_from", "current_model")


def group_of(key: str, value: Any) -> str:
    if isinstance(value, Path) or key.endswith(PATH_SUFFIXES):
        return "paths"
    return next((name for name, words in GROUPS if any(w in key for w in words)), "about")


def rounded(key: str, value: float) -> float:
    """Seconds to 2 decimals; else 4 significant digits, but whole numbers stay whole (81559 MB, not 81560)."""
    if not math.isfinite(value) or value == 0:
        return value
    if key.endswith(("seconds", "_s")):
        return round(value, 2)
    return float(round(value, max(0, 3 - math.floor(math.log10(abs(value))))))


def plain(value: Any, key: str = "") -> Any:
    """A JSON-ready copy: floats rounded, absent values dropped, paths as strings."""
    if isinstance(value, dict):
        return {k: plain(v, str(k)) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v, key) for v in value]
    if isinstance(value, float):
        return rounded(key, value)
    if isinstance(value, Path):
        return str(value)
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_metadata(values: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    """Plain values (and ready MetadataValues, kept as they are) as ordered, readable Dagster metadata."""
    present = {k: v for k, v in values.items() if v is not None and v != {} and v != []}
    ordered = sorted(present.items(), key=lambda kv: ORDER.index(group_of(*kv)))  # stable: keeps order in a group
    out: dict[str, dg.MetadataValue] = {}
    overflow: dict[str, Any] = {}
    plotted = 0
    for key, value in ordered:
        if is_number(value):
            plotted += 1
            if plotted > MAX_PLOTTED:
                overflow[key] = value
                continue
        out[key] = _value(key, value)
    if overflow:
        out[OVERFLOW] = dg.MetadataValue.json(plain(overflow))
    return out


def _value(key: str, value: Any) -> dg.MetadataValue:
    if isinstance(value, dg.MetadataValue):
        return value
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(rounded(key, value))
    if isinstance(value, Path):
        return dg.MetadataValue.path(str(value))
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        return table(value)
    if isinstance(value, (dict, list, tuple)):
        return dg.MetadataValue.json(plain(value, key))
    return dg.MetadataValue.text(str(value))


_COLUMN_TYPES = ((bool, "bool"), (int, "int"), (float, "float"))


def table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    """Rows of plain values as a table (the UI shows it inline); columns in first-seen order."""
    rows = [plain(row) for row in rows]
    columns: dict[str, str] = {}
    for row in rows:
        for k, v in row.items():
            columns.setdefault(k, next((name for kind, name in _COLUMN_TYPES if isinstance(v, kind)), "string"))
    # An int column with a float in a later row is a float column.
    for k in columns:
        if columns[k] == "int" and any(isinstance(row.get(k), float) for row in rows):
            columns[k] = "float"
    records = [dg.TableRecord({k: (str(v) if columns[k] == "string" else v) for k, v in row.items()}) for row in rows]
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(
        columns=[dg.TableColumn(k, kind) for k, kind in columns.items()]))


def numbers(values: dict, prefix: str = "") -> dict[str, dg.MetadataValue]:
    return {f"{prefix}{k}": dg.MetadataValue.float(rounded(k, float(v))) for k, v in values.items() if is_number(v)}


CURVE = "loss curve"


def curve_markdown(png: Path, tracking_url: str | None = None) -> str:
    """The curves as an embedded image (Dagster shows images only through markdown), and the live curves' link."""
    encoded = base64.b64encode(Path(png).read_bytes()).decode()
    text = f"![training loss and validation curves](data:image/png;base64,{encoded})"
    # The run's page in MLflow (a tracking server, or `make mlflow-ui` over the embedded store).
    return f"{text}\n\n[Live curves in the tracking UI]({tracking_url})" if tracking_url else text


def training_metadata(values: dict[str, Any], log_path: str | Path | None, *, no_curve: str | None = None,
                      telemetry: dict | None = None, tracking_url: str | None = None) -> dict[str, dg.MetadataValue]:
    """A training asset's metadata (trained model, teacher, student, a trial): its loss and validation curves first,
    drawn from the run's JSONL log into `loss_curve.png` beside the run, then its figures; `no_curve` says why
    there is no curve where there is no log."""
    from nexa_core.training.plots import loss_curve

    png = loss_curve(log_path, Path(log_path).parent.parent / "loss_curve.png") if log_path else None
    if png:
        first = dg.MetadataValue.md(curve_markdown(png, tracking_url))
    else:
        first = dg.MetadataValue.text(no_curve or (f"no loss or validation point in {log_path}" if log_path
                                                   else "no training log"))
    return {CURVE: first, **to_metadata({**values, **telemetry_values(telemetry), "loss_curve_path": png})}


# With a GPU: what the run used and cost. Without one, GPU-hours and cost would read as measured zeros: the
# host's figures and the reason, once.
PLOTTED_GPU = ("gpu_count", "gpu_hours", "cost_usd", "energy_kwh", "gpu_util_mean_pct", "gpu_memory_peak_mb",
               "gpu_power_mean_w")
PLOTTED_HOST = ("cpu_util_mean_pct", "process_rss_peak_mb")
_GPU_ONLY = ("gpu", "cost", "energy")


def telemetry_values(summary: dict | None) -> dict[str, Any]:
    """The telemetry summary's figures as plain metadata values (for `to_metadata`)."""
    if not summary:
        return {}
    from nexa_core.telemetry.summary import numeric_figures

    figures = numeric_figures(summary)
    has_gpu = bool(summary.get("gpu_count"))
    plotted = ("telemetry_wall_seconds", *(PLOTTED_GPU if has_gpu else PLOTTED_HOST))
    out: dict[str, Any] = {k: figures[k] for k in plotted if k in figures}
    if not has_gpu:
        out["gpu"] = f"none on this machine ({summary.get('no_gpu_reason') or 'no GPU visible to this run'})"
    out["other_telemetry_figures"] = {k: v for k, v in figures.items()
                                      if k not in out and (has_gpu or not k.startswith(_GPU_ONLY))}
    out["telemetry_source"] = summary["source"]
    if has_gpu:
        out["energy_source"] = summary["energy_source"]
        out["gpus"] = [{k: g[k] for k in ("index", "name", "uuid", "memory_total_mb")} for g in summary["gpus"]]
    out["environment_fingerprint"] = summary.get("environment_fingerprint")
    return out
