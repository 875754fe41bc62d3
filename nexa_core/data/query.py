"""The runbooks' query utility: list prepared dataset versions and read their splits as DataFrames.

    from nexa_core.data import DataQuery
    df = DataQuery().get_training_dataset()            # latest version of the active recipe's line, train split
    DataQuery().get_training_dataset("3f2a...", "all")  # every split, with a `split` column
    DataQuery(line="rotten-tomatoes-corpus-n300-9b8e1c2d").get_training_dataset()  # another line's latest
    DataQuery().get_pretrain_dataset(shard="001")        # shard 001 of the latest train split (data.shards)

A line is one source with one set of data settings (lines.py). "latest" with no line is the latest version of the
active recipe's line (NEXA_CONFIG, else configs/default.yaml), so an override run preparing its own line never
changes it; where that line was never prepared under the folder (other data, or folders from before lines),
it is the most recently prepared version of any line (`LATEST`).

Distillation artefacts live next to the training datasets, in `<root>/../distillation/`:
    teacher_inputs/<version>/inputs.parquet                      get_teacher_inputs(version)
    teacher_outputs/<teacher>/*.parquet (chunks with input_id)   get_teacher_outputs(version, teacher)
    distillation_pairs/<teacher>/<version>/pairs.parquet         get_distillation_pairs(version, teacher)
"latest" is the most recently created one; teacher=None is the only (or most recently written) teacher.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import StorageConfig
from nexa_core.data.lines import latest_of, recipe_line, validate_line
from nexa_core.data.lines import lines as line_pointers
from nexa_core.data.names import INPUTS_DIR, INPUTS_FILE, INPUTS_META, validate_name
from nexa_core.data.prepare import LATEST, META
from nexa_core.data.shards import SHARD_WIDTH, SHARDED_SPLIT, read_shard, shard_count
from nexa_core.data.splitting import SPLITS

# Versions are hex content hashes; checking this before any path join keeps `../x` or `/etc` out of the tree.
_VERSION_RE = re.compile(r"^[0-9a-f]{1,64}$")
OUTPUTS_DIR = "teacher_outputs"
PAIRS_DIR = "distillation_pairs"
PAIRS_FILE = "pairs.parquet"
PAIRS_META = "pairs.json"


class DataQuery:
    def __init__(self, root: Optional[str | os.PathLike] = None, distill_root: Optional[str | os.PathLike] = None,
                 *, line: Optional[str] = None):
        # StorageConfig() reads NEXA_SHARED when created, so the default follows the environment at call time.
        self.root = Path(root).expanduser() if root is not None else Layout.from_storage(StorageConfig()).datasets_dir
        # Layout.distill_dir is datasets_dir.parent / "distillation": the same folder for the default root.
        self.distill_root = (Path(distill_root).expanduser() if distill_root is not None
                             else self.root.parent / "distillation")
        self.line = validate_line(line) if line is not None else None

    def lines(self) -> dict[str, str]:
        """Every dataset line prepared under the folder and its latest version."""
        return line_pointers(self.root)

    def versions(self) -> list[str]:
        """Stored versions, oldest first (by created_at in dataset.json)."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            meta = child / META
            if _VERSION_RE.fullmatch(child.name) and meta.is_file():
                found.append((str(self._read_meta(meta).get("created_at", "")), child.name))
        return [name for _, name in sorted(found)]

    def resolve(self, version: str = "latest") -> str:
        """The full version id for "latest", a full id or a unique prefix of one."""
        if not isinstance(version, str) or not version.strip():
            raise NexaError(f"version: expected 'latest' or a hex version id, got {version!r}")
        version = version.strip().lower()
        if version == "latest":
            return self._latest()
        if not _VERSION_RE.fullmatch(version):
            raise NexaError(f"version: {version!r} is not a dataset version (hex id); available: {self._available()}")
        if (self.root / version / META).is_file():
            return version
        matches = [v for v in self.versions() if v.startswith(version)]
        if len(matches) != 1:
            why = "is ambiguous" if matches else "not found"
            raise NexaError(f"version: {version!r} {why} under {self.root}; available: {self._available()}")
        return matches[0]

    def info(self, version: str = "latest") -> dict[str, Any]:
        """The version's dataset.json: labels, counts, drop counts, source, created_at, columns used."""
        return self._read_meta(self.root / self.resolve(version) / META)

    def get_training_dataset(self, version: str = "latest", split: str = "train",
                             shard: Optional[str | int] = None) -> pd.DataFrame:
        """One split (columns text, label, label_id), or split="all": every split with a `split` column.
        `shard` ("000", "001", ...): only that shard of the train split (an unsharded version has one, "000")."""
        if split not in (*SPLITS, "all"):
            raise NexaError(f"split: {split!r} is not a split; use one of {[*SPLITS, 'all']}")
        if shard is not None and split != SHARDED_SPLIT:
            raise NexaError(f"shard: only the {SHARDED_SPLIT} split is sharded (data.shards); use split="
                            f"{SHARDED_SPLIT!r} or leave shard unset for {split!r}")
        folder = self.root / self.resolve(version)
        if shard is not None:
            return read_shard(folder, shard)
        if split != "all":
            return self._read_split(folder, split)
        frames = [self._read_split(folder, name).assign(split=name) for name in SPLITS]
        return pd.concat(frames, ignore_index=True)

    def get_pretrain_dataset(self, version: str = "latest", shard: Optional[str | int] = None) -> pd.DataFrame:
        """The runbook's `get_pretrain_dataset(shard="001")`: the train split of `version`, or one shard of it."""
        return self.get_training_dataset(version, SHARDED_SPLIT, shard=shard)

    def shards(self, version: str = "latest") -> list[str]:
        """The version's shard ids ("000", ...); an unsharded version has one, "000"."""
        return [f"{i:0{SHARD_WIDTH}d}" for i in range(shard_count(self.root / self.resolve(version)))]

    # --- distillation ---------------------------------------------------------------------------------------

    def teacher_input_versions(self) -> list[str]:
        """Stored input sets, oldest first (by created_at in inputs.json)."""
        base = self.distill_root / INPUTS_DIR
        return self._by_time(base, lambda d: _created_at(self._read_meta(d / INPUTS_META))
                             if (d / INPUTS_META).is_file() and (d / INPUTS_FILE).is_file() else None)

    def teachers(self, kind: str = "outputs") -> list[str]:
        """Teacher folders under teacher_outputs (kind="outputs") or distillation_pairs (kind="pairs"),
        least recently written first."""
        if kind not in ("outputs", "pairs"):
            raise NexaError(f"kind: {kind!r}; use 'outputs' or 'pairs'")
        base = self.distill_root / (OUTPUTS_DIR if kind == "outputs" else PAIRS_DIR)
        return self._by_time(base, _last_write)

    def pair_versions(self, teacher: Optional[str] = None) -> list[str]:
        """Input-set versions with pairs from `teacher`, oldest first (pairs.json created_at, else file time)."""
        base = self.distill_root / PAIRS_DIR / self._resolve_teacher("pairs", teacher)
        return self._by_time(base, lambda d: _pairs_time(d) if (d / PAIRS_FILE).is_file() else None)

    def get_teacher_inputs(self, version: str = "latest") -> pd.DataFrame:
        """Input set `version`: columns input_id, text, label, label_id, split (train or unlabelled)."""
        return pd.read_parquet(self.distill_root / INPUTS_DIR / self._resolve_inputs(version) / INPUTS_FILE)

    def get_teacher_outputs(self, version: str = "latest", teacher: Optional[str] = None) -> pd.DataFrame:
        """The teacher's outputs for the inputs of `version`, in input order, joined with the inputs' columns.

        Only inputs already labelled are returned (inference may still be running); an input labelled in two
        chunks (a re-run chunk) appears once, from the first chunk by file name."""
        resolved = self._resolve_inputs(version)
        inputs = self.get_teacher_inputs(resolved)
        name = self._resolve_teacher("outputs", teacher)
        folder = self.distill_root / OUTPUTS_DIR / name
        chunks = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
        if not chunks:
            raise NexaError(f"teacher {name!r}: no output chunks (*.parquet) in {folder}; run teacher inference")
        ids = set(inputs["input_id"].tolist())
        frames = []
        for path in chunks:
            chunk = pd.read_parquet(path)
            if "input_id" not in chunk.columns:
                raise NexaError(f"{path}: no input_id column; it is not a teacher output chunk, remove it")
            frames.append(chunk[chunk["input_id"].isin(ids)])
        outputs = pd.concat(frames, ignore_index=True).drop_duplicates("input_id", keep="first")
        if outputs.empty:
            raise NexaError(f"teacher {name!r} has no outputs for input set {resolved!r} in "
                            f"{folder}; run teacher inference on that input set")
        own = ["input_id", *(c for c in outputs.columns if c not in inputs.columns)]
        return inputs.merge(outputs[own], on="input_id", how="inner").reset_index(drop=True)

    def get_distillation_pairs(self, version: str = "latest", teacher: Optional[str] = None) -> pd.DataFrame:
        """The filtered pairs of input set `version` labelled by `teacher` (latest: most recently created)."""
        name = self._resolve_teacher("pairs", teacher)
        base = self.distill_root / PAIRS_DIR / name
        available = self.pair_versions(name)
        if isinstance(version, str) and version.strip().lower() == "latest":
            if not available:
                raise NexaError(f"teacher {name!r}: no distillation pairs under {base}; run the pair filtering")
            return pd.read_parquet(base / available[-1] / PAIRS_FILE)
        validate_name(version, "version")
        if version not in available:
            raise NexaError(f"version: no pairs for input set {version!r} from teacher {name!r}; "
                            f"available: {', '.join(available) or 'none under ' + str(base)}")
        return pd.read_parquet(base / version / PAIRS_FILE)

    def _resolve_inputs(self, version: str) -> str:
        available = self.teacher_input_versions()
        base = self.distill_root / INPUTS_DIR
        if isinstance(version, str) and version.strip().lower() == "latest":
            if not available:
                raise NexaError(f"no teacher input sets under {base}; build one first (distill.inputs_version)")
            return available[-1]
        validate_name(version, "version")
        if version not in available:
            raise NexaError(f"version: input set {version!r} not found; available: "
                            f"{', '.join(available) or 'none under ' + str(base)}")
        return version

    def _resolve_teacher(self, kind: str, teacher: Optional[str]) -> str:
        available = self.teachers(kind)
        base = self.distill_root / (OUTPUTS_DIR if kind == "outputs" else PAIRS_DIR)
        if teacher is None or (isinstance(teacher, str) and teacher.strip().lower() == "latest"):
            if not available:
                what = "teacher outputs" if kind == "outputs" else "distillation pairs"
                raise NexaError(f"no {what} under {base}; run the distillation pipeline first")
            return available[-1]
        validate_name(teacher, "teacher")
        if teacher not in available:
            raise NexaError(f"teacher: {teacher!r} not found under {base}; available: "
                            f"{', '.join(available) or 'none'}")
        return teacher

    @staticmethod
    def _by_time(base: Path, when) -> list[str]:
        """Names of valid child folders of `base`, oldest first; `when` gives a sort key or None (skip)."""
        if not base.is_dir():
            return []
        found = []
        for child in base.iterdir():
            if child.is_dir() and not child.name.startswith(".") and _valid_name(child.name):
                key = when(child)
                if key is not None:
                    found.append((key, child.name))
        return [name for _, name in sorted(found)]

    def _latest(self) -> str:
        line = self.line or recipe_line()
        version = latest_of(self.root, line) if line else None
        if version is not None:
            if not _VERSION_RE.fullmatch(version) or not (self.root / version / META).is_file():
                raise NexaError(f"line {line!r} names {version!r}, which is not a stored version under {self.root}; "
                                "prepare that recipe's data again")
            return version
        if self.line:
            known = ", ".join(self.lines()) or "none"
            raise NexaError(f"line: {self.line!r} was never prepared under {self.root}; lines: {known}")
        pointer = self.root / LATEST
        if not pointer.is_file():
            raise NexaError(f"no prepared dataset under {self.root} (no {LATEST} file); run the data preparation first")
        version = pointer.read_text(encoding="utf-8").strip()
        if not _VERSION_RE.fullmatch(version) or not (self.root / version / META).is_file():
            raise NexaError(
                f"{pointer} names {version!r}, which is not a stored version; available: {self._available()}; "
                "prepare the data again"
            )
        return version

    def _available(self) -> str:
        return ", ".join(self.versions()) or f"none under {self.root}"

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise NexaError(f"{path}: unreadable ({err}); prepare the data again") from None

    @staticmethod
    def _read_split(folder: Path, split: str) -> pd.DataFrame:
        path = folder / f"{split}.parquet"  # a file, or a folder of parts (incremental versions from drops)
        if not path.exists():
            raise NexaError(f"{path} is missing; the version folder is incomplete, prepare the data again")
        return pd.read_parquet(path)


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except NexaError:
        return False
    return True


def _last_write(folder: Path) -> float:
    """When a folder last changed: its own mtime or its newest visible entry's (chunks are appended)."""
    return max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir() if not p.name.startswith("."))])


def _created_at(meta: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(meta.get("created_at"))).timestamp()
    except ValueError:
        return 0.0


def _pairs_time(folder: Path) -> float:
    meta = folder / PAIRS_META
    if meta.is_file():
        try:
            stamp = _created_at(json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            stamp = 0.0
        if stamp:
            return stamp
    return (folder / PAIRS_FILE).stat().st_mtime
