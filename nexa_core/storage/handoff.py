"""Moving the files a step's output points at to the worker that runs the next step, through a durable store.

Steps hand each other small objects (a `PreparedDataset`, a `TrainedModel`, a report, a dict with a `run_id`)
that name folders by path: the dataset version under the shared tier, the run folder under the durable tier.
When steps run on different machines that share no disk, those paths mean nothing on the next machine. A
`Shipment` wraps the object with the files it points at, each pushed to the store at `<tier>/<path in the tier>`
(verified, with its completion record; a file the store already holds with the same bytes is not uploaded again),
and the producer's storage roots. The receiving worker fetches every file it lacks or holds with other bytes
(verified, atomic), and gets the object back with its paths moved under its own roots.

What an object points at: every path (a `Path`, or a string holding an absolute path) under one of the storage
tiers, and the run folder of every `run_id` it carries (the run record, config snapshot, metrics and evaluation
that later steps read beside the model). Paths outside the tiers (a pinned model, a source file) are left as they
are: each worker must reach those itself. Files are pushed one by one, never as a mirrored folder, so steps that
add files to the same folder on different workers never delete each other's.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nexa_core.common.hashing import sha256_file
from nexa_core.common.layout import Layout
from nexa_core.common.run_ids import RUN_ID_RE
from nexa_core.storage.store import DurableStore

TIERS = ("scratch", "durable", "shared")
_SKIPPED_SUFFIXES = (".lock", ".nexa-tmp")  # locks and half-written temporaries are never part of a hand-off


@dataclass(frozen=True)
class ShippedFile:
    tier: str  # scratch, durable or shared
    rel: str  # posix path inside the tier
    size: int
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.tier}/{self.rel}"


@dataclass(frozen=True)
class Shipment:
    """What goes into the step-output store instead of the bare object."""

    value: Any
    roots: dict[str, str]  # tier -> the producer's root, to move the value's paths under the receiver's
    files: tuple[ShippedFile, ...] = ()
    unshipped: tuple[str, ...] = field(default=())  # paths outside the tiers, named for the log


def _roots(layout: Layout) -> dict[str, str]:
    return {tier: str(getattr(layout, tier)) for tier in TIERS}


def _children(value: Any) -> list[Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return []


def _run_ids(value: Any) -> set[str]:
    found: set[str] = set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        run_id = getattr(value, "run_id", None)
    elif isinstance(value, dict):
        run_id = value.get("run_id")
    else:
        run_id = None
    if isinstance(run_id, str) and run_id:
        found.add(run_id)
    for child in _children(value):
        found |= _run_ids(child)
    return found


def _paths(value: Any) -> set[Path]:
    if isinstance(value, Path):
        return {value}
    if isinstance(value, str):
        return {Path(value)} if os.path.isabs(value) and "\n" not in value and len(value) < 4096 else set()
    found: set[Path] = set()
    for child in _children(value):
        found |= _paths(child)
    return found


def _tier_of(path: Path, roots: dict[str, str]) -> tuple[str, PurePosixPath] | None:
    """The tier a path lies in and its place inside it; the deepest root wins where roots nest."""
    best = None
    for tier, root in roots.items():
        try:
            rel = PurePosixPath(Path(path).relative_to(root).as_posix())
        except ValueError:
            continue
        if best is None or len(root) > len(roots[best[0]]):
            best = (tier, rel)
    return best


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()
                  and not p.name.endswith(_SKIPPED_SUFFIXES) and not p.name.startswith(".nexa"))


def _collections(layout: Layout) -> set[Path]:
    """Folders that hold many runs or versions (and everything above them): an output naming one of these (a
    recipe's storage roots, say) does not mean "every run", so they are never shipped whole."""
    found: set[Path] = set()
    for folder in (layout.runs_dir, layout.manifests_dir, layout.packages_dir, layout.deploy_dir, layout.datasets_dir,
                   layout.drops_dir, layout.distill_dir, layout.raw_drops_dir, layout.scratch / "runs"):
        found |= {folder, *folder.parents}
    return found


def pointed_files(value: Any, layout: Layout) -> tuple[dict[Path, tuple[str, str]], list[str]]:
    """{local file: (tier, rel)} for everything `value` points at inside the tiers, and the paths outside them."""
    roots, collections = _roots(layout), _collections(layout)
    wanted = _paths(value) | {layout.runs_dir / run_id for run_id in _run_ids(value) if RUN_ID_RE.fullmatch(run_id)}
    files: dict[Path, tuple[str, str]] = {}
    outside: list[str] = []
    for path in sorted(wanted):
        if _tier_of(path, roots) is None:
            if path.exists():
                outside.append(str(path))
            continue
        if path in collections:
            continue
        for file in _files_under(path):
            tier, rel = _tier_of(file, roots)
            files[file] = (tier, str(rel))
    return files, outside


def ship(store: DurableStore, value: Any, layout: Layout, *, max_files: int = 8) -> Shipment:
    """Push every file `value` points at (unchanged ones are only checked) and wrap it for the next step."""
    files, outside = pointed_files(value, layout)

    def push(item: tuple[Path, tuple[str, str]]) -> ShippedFile:
        path, (tier, rel) = item
        record = store.push_file(path, f"{tier}/{rel}")
        return ShippedFile(tier, rel, record["size"], record["sha256"])

    with cf.ThreadPoolExecutor(max_workers=max_files, thread_name_prefix="nexa-ship") as pool:
        shipped = tuple(pool.map(push, files.items()))
    return Shipment(value, _roots(layout), shipped, tuple(outside))


def _same_bytes(path: Path, entry: ShippedFile) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def receive(store: DurableStore, shipment: Shipment, layout: Layout, *, max_files: int = 8) -> dict[str, int]:
    """Fetch the shipment's files this worker lacks or holds with other bytes; return how many of each."""
    def fetch(entry: ShippedFile) -> bool:
        dest = Path(getattr(layout, entry.tier)) / entry.rel
        if _same_bytes(dest, entry):
            return False
        store.pull_file(entry.key, dest, overwrite=True)  # verified against the record; renamed into place
        return True

    with cf.ThreadPoolExecutor(max_workers=max_files, thread_name_prefix="nexa-receive") as pool:
        fetched = list(pool.map(fetch, shipment.files))
    return {"fetched": sum(fetched), "present": len(fetched) - sum(fetched)}


def receive_paths(store: DurableStore, paths: list[Path], layout: Layout) -> dict[str, int]:
    """Fetch what was handed over under `paths` (folders of this worker's tiers) without the shipment
    that named them: for a step that finds a run by id in a database rather than in its inputs."""
    roots = _roots(layout)
    entries = []
    for path in paths:
        found = _tier_of(path, roots)
        if found is None or path in _collections(layout):
            continue
        for key in store.complete_keys(f"{found[0]}/{found[1]}"):
            record = store.read_record(key)
            if record is not None and record.get("kind") == "file":
                tier, rel = key.split("/", 1)
                entries.append(ShippedFile(tier, rel, record["size"], record["sha256"]))
    return receive(store, Shipment(None, roots, tuple(entries)), layout)


def relocate(value: Any, roots: dict[str, str], layout: Layout) -> Any:
    """`value` with every path under the producer's `roots` moved under this worker's `layout`."""
    mine = _roots(layout)
    if roots == mine:
        return value

    def move(path: str) -> str:
        found = _tier_of(Path(path), roots)
        return path if found is None else str(Path(mine[found[0]]) / found[1]) if str(found[1]) != "." else mine[found[0]]

    def walk(item: Any) -> Any:
        if isinstance(item, Path):
            return Path(move(str(item)))
        if isinstance(item, str):
            return move(item) if os.path.isabs(item) else item
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.replace(item, **{f.name: walk(getattr(item, f.name))
                                                for f in dataclasses.fields(item) if f.init})
        if isinstance(item, dict):
            return type(item)((k, walk(v)) for k, v in item.items())
        if isinstance(item, (list, tuple)):
            return type(item)(walk(v) for v in item)
        return item

    return walk(value)


def unwrap(store: DurableStore, shipment: Shipment, layout: Layout) -> tuple[Any, dict[str, int]]:
    """The object of a shipment, its files present here and its paths pointing at them."""
    stats = receive(store, shipment, layout)
    return relocate(shipment.value, shipment.roots, layout), stats
