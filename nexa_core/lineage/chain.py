"""`lineage(layout, run_id)`: the chain from a model back to its raw data, read from the run records.

deployed model -> student run -> distillation pairs -> teacher outputs -> teacher inputs -> teacher run ->
dataset version -> raw source (a run that is not a student goes straight to its dataset). Each run node carries
its code commit and environment fingerprint. A link a record does not hold (a run recorded before lineage was
recorded) is reported as UNKNOWN, never guessed and never a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import validate_run_id
from nexa_core.release import deploy
from nexa_core.release.deployment import model_line
from nexa_core.training.record import read_record

UNKNOWN = "unknown (recorded before lineage)"


@dataclass(frozen=True)
class Node:
    kind: str  # "deployed model", "student run", "distillation pairs", ..., "raw source"
    id: str  # the run id, version or source name that identifies it
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lineage(layout: Layout, run_id: Optional[str] = None) -> list[Node]:
    """The chain for `run_id` (default: the deployed model), model first, raw data last."""
    deployed = deploy.current_release(layout) if run_id is None else _deployed_or_none(layout)
    if run_id is None and deployed is None:
        raise NexaError("nothing is deployed, so there is no default model; pass a run id (`nexa lineage <run_id>`)")
    run_id = validate_run_id(run_id or deployed)
    record = run_record(layout, run_id)
    nodes = [_deployed_node(layout, run_id)] if run_id == deployed else []
    _extend(nodes, _run_nodes(layout, run_id, record))
    return nodes


def run_record(layout: Layout, run_id: str) -> dict:
    """The run's record, or a one-line error naming what is missing."""
    run_dir = layout.run_dir(validate_run_id(run_id))
    if not run_dir.is_dir():
        raise NexaError(f"no run {run_id} under {layout.runs_dir}; check the id, or restore a mirrored run with "
                        f"`nexa pull {run_id}`")
    record = read_record(run_dir)
    if record is None:
        raise NexaError(f"run {run_id} has no readable run.json in {run_dir}; its parents are not recorded")
    return record


def role_of(run_id: str, record: dict) -> str:
    """student, teacher or trained: as recorded, else what the run id says (runs recorded before lineage)."""
    recorded = (record.get("lineage") or {}).get("role")
    return recorded or ("student" if model_line(run_id) == "student" else "trained")


def _deployed_or_none(layout: Layout) -> Optional[str]:
    try:
        return deploy.current_release(layout)
    except NexaError:
        return None  # a broken pointer is `nexa deploy`'s to report; a named run's lineage does not need it


def _deployed_node(layout: Layout, run_id: str) -> Node:
    records = deploy.history(layout)
    last = records[-1] if records and records[-1].get("run_id") == run_id else {}
    return Node("deployed model", run_id, {
        "current_model": str(deploy.current_model_path(layout)), "release": str(deploy.release_dir(layout, run_id)),
        "deployed_at": last.get("deployed_at", UNKNOWN), "action": last.get("action"),
        "by": (f"Dagster run {last['dagster_run_id']}" if last.get("dagster_run_id") else last.get("by", "CLI"))
        if last else None})


def _run_nodes(layout: Layout, run_id: str, record: dict, kind: Optional[str] = None) -> list[Node]:
    lin = record.get("lineage") or {}
    role = role_of(run_id, record)
    nodes = [_run_node(layout, run_id, record, kind or f"{role} run")]
    if role == "student":
        nodes += _student_parents(layout, lin)
    nodes += _dataset_nodes(layout, lin.get("dataset") or {"version": record.get("dataset_version")},
                            lin.get("raw_source"))
    return nodes


def _run_node(layout: Layout, run_id: str, record: dict, kind: str) -> Node:
    lin = record.get("lineage") or {}
    run_dir = layout.run_dir(run_id)
    code = lin.get("code") or _code_from_environment(run_dir)
    manifest = layout.manifest_path(run_id)
    details = {
        "status": record.get("status"),
        "code_commit": _commit(code),
        "environment_fingerprint": lin.get("environment_fingerprint") or record.get("environment_fingerprint")
        or UNKNOWN,
        "base_model": lin.get("base_model") or ({"name_or_path": record["model"]} if record.get("model") else UNKNOWN),
        "dataset_version": (lin.get("dataset") or {}).get("version") or record.get("dataset_version") or UNKNOWN,
        "config_snapshot": str(run_dir / "config.yaml"),
        "manifest": str(manifest) if manifest.is_file() else None,
    }
    if lin.get("student_init"):
        details["student_init"] = lin["student_init"]
    if "kd" in lin:
        details["kd"] = lin["kd"]
    if record.get("reproduces"):
        details["reproduces"] = record["reproduces"]
    return Node(kind, run_id, details)


def _code_from_environment(run_dir: Path) -> dict:
    """Runs recorded before lineage still wrote environment.json, which holds the commit."""
    try:
        git = json.loads((run_dir / "environment.json").read_text()).get("git") or {}
    except (OSError, ValueError):
        return {}
    return {"commit": git.get("commit"), "dirty": git.get("dirty")}


def _commit(code: dict) -> str:
    if not code.get("commit"):
        return UNKNOWN
    return code["commit"] + (" (uncommitted changes)" if code.get("dirty") else "")


def _student_parents(layout: Layout, lin: dict) -> list[Node]:
    """pairs -> teacher outputs -> teacher inputs -> the teacher (its run's own chain, or the pinned folder)."""
    if "teacher" not in lin:
        return [Node("teacher", UNKNOWN)]
    pairs, outputs, inputs, teacher = (lin.get(k) or {} for k in ("pairs", "teacher_outputs", "inputs", "teacher"))
    nodes = [
        Node("distillation pairs", pairs.get("version", UNKNOWN),
             {"path": pairs.get("path"), "exists": _exists(pairs.get("path")), "sha256": pairs.get("sha256"),
              "kept": pairs.get("kept"), "total": pairs.get("total")}),
        Node("teacher outputs", outputs.get("version", UNKNOWN),
             {"path": outputs.get("path"), "exists": _exists(outputs.get("path")),
              "teacher_version": outputs.get("model_version")}),
        Node("teacher inputs", inputs.get("version", UNKNOWN),
             {"path": inputs.get("path"), "exists": _exists(inputs.get("path")),
              "dataset_version": inputs.get("source_dataset_version")}),
    ]
    teacher_run = teacher.get("run_id") or teacher.get("trained_by")
    if teacher.get("run_id") is None:
        nodes.append(Node("pinned teacher", teacher.get("pinned_path") or UNKNOWN,
                          {"teacher_version": teacher.get("version"), "trained_by": teacher.get("trained_by")}))
    if teacher_run:
        try:
            record = run_record(layout, teacher_run)
        except NexaError as err:
            return [*nodes, Node("teacher run", teacher_run, {"teacher_version": teacher.get("version"),
                                                              "missing": str(err)})]
        teacher_nodes = _run_nodes(layout, teacher_run, record, kind="teacher run")
        teacher_nodes[0].details["teacher_version"] = teacher.get("version")
        nodes += teacher_nodes
    return nodes


def _dataset_nodes(layout: Layout, dataset: dict, raw: Optional[dict]) -> list[Node]:
    version = dataset.get("version")
    if not version:
        return [Node("dataset version", UNKNOWN), Node("raw source", UNKNOWN)]
    folder = layout.datasets_dir / version
    if not folder.is_dir() and dataset.get("path"):
        folder = Path(dataset["path"])  # the recorded folder, if the storage root has not moved
    try:
        info = json.loads((folder / "dataset.json").read_text())
    except (OSError, ValueError):
        info = {}
    source = (raw or {}).get("source") or dataset.get("source") or info.get("source") or UNKNOWN
    node = Node("dataset version", version, {
        "path": str(folder), "exists": bool(info), "source": source, "line": info.get("line") or dataset.get("line"),
        "created_at": info.get("created_at"), "counts": info.get("counts")})
    if raw is None:
        raw_details = {"content_version": UNKNOWN}
    else:
        raw_details = {"content_version": raw.get("content_version") or f"not recorded ({raw.get('note')})"}
    return [node, Node("raw source", source, raw_details)]


def _exists(path: Optional[str]) -> Optional[bool]:
    return Path(path).exists() if path else None


def _extend(nodes: list[Node], more: list[Node]) -> None:
    """A dataset shared by the student and its teacher is listed once."""
    seen = {(n.kind, n.id) for n in nodes}
    for node in more:
        if (node.kind, node.id) not in seen:
            nodes.append(node)
            seen.add((node.kind, node.id))
