"""Dataset lines: the versions prepared from one source with one set of data settings, and each line's "latest".

A recipe's `data:` section and seed name its line, e.g. `rotten-tomatoes-corpus-all-3f2a9c1d` (readable label:
source name and sample size, then a hash of every setting that shapes the rows). Versions stay content hashes
(prepare.py); a changed source file adds a version to the same line. "latest" resolves within a line, so a tiny
override (`data.max_samples: 300`) adds a version to its own line and leaves what every other recipe reads alone.

On disk: `<datasets_dir>/lines/<line>` holds the line's newest version (one small file per line, written
atomically). Version folders are unchanged, so folders written before lines existed stay readable, and the
global `LATEST` file still names the most recently prepared version of any line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Optional

from nexa_core.common.atomic import atomic_write_text
from nexa_core.common.errors import NexaError
from nexa_core.config import DataConfig, load_config
from nexa_core.data.loading import describe_source

LINES_DIR = "lines"
DROPS_LINE = "drops"  # every incremental version built from data drops (incremental.py)
_LINE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = PROJECT_ROOT / "configs" / "default.yaml"


def source_name(cfg: DataConfig) -> str:
    """The source in a few characters: a file's name without its suffixes, a folder's name, or the hub id."""
    if cfg.path:
        name = Path(cfg.path.rstrip("/")).name.split(".")[0]
    else:
        name = "-".join(p for p in (cfg.name, cfg.config, cfg.split) if p)
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "data"


def dataset_label(cfg: DataConfig) -> str:
    """Readable: the source and the sample size (`max_samples`, else all rows), e.g. rotten-tomatoes-corpus-n300.
    Letters, digits and '-' only, so it can also name runs."""
    return f"{source_name(cfg)}-{f'n{cfg.max_samples}' if cfg.max_samples else 'all'}"


def line_of(cfg: DataConfig, seed: int) -> str:
    """The line `cfg` prepares into: its label and a hash of the source and every setting that shapes the rows."""
    settings = {"source": describe_source(cfg), "seed": seed,
                **cfg.model_dump(include={"text_column", "label_column", "encoding", "drop_labels", "max_samples",
                                          "eval_samples", "validation_fraction", "test_fraction"})}
    if cfg.shards > 1:  # a sharded layout is its own line; shards=1 keeps the lines named before shards existed
        settings["shards"] = cfg.shards
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:8]
    return f"{dataset_label(cfg)}-{digest}"


def validate_line(line: str) -> str:
    if not isinstance(line, str) or not _LINE_RE.fullmatch(line) or ".." in line:
        raise NexaError(f"line: {line!r} is not a dataset line; use a name from DataQuery().lines() "
                        "(e.g. rotten-tomatoes-corpus-all-3f2a9c1d)")
    return line


def mark_latest(datasets_dir: str | os.PathLike, line: str, version: str) -> None:
    atomic_write_text(Path(datasets_dir) / LINES_DIR / validate_line(line), version)


def latest_of(datasets_dir: str | os.PathLike, line: str) -> Optional[str]:
    """The version the line's pointer names, or None when the line was never prepared under this folder."""
    pointer = Path(datasets_dir) / LINES_DIR / validate_line(line)
    return pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None


def lines(datasets_dir: str | os.PathLike) -> dict[str, str]:
    """Every line under the folder and its latest version."""
    base = Path(datasets_dir) / LINES_DIR
    if not base.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8").strip() for p in sorted(base.iterdir())
            if p.is_file() and _LINE_RE.fullmatch(p.name)}


def active_recipe() -> Optional[Path]:
    """The recipe the code location runs (NEXA_CONFIG, else configs/default.yaml), or None where there is none
    (an installed package without the project's configs/)."""
    configured = os.environ.get("NEXA_CONFIG")
    if not configured:
        return DEFAULT_RECIPE if DEFAULT_RECIPE.is_file() else None
    path = Path(configured).expanduser()
    if not path.is_absolute() and not path.exists():
        path = PROJECT_ROOT / path
    return path


def recipe_line(recipe: Optional[str | os.PathLike] = None) -> Optional[str]:
    """The line of `recipe` (default: the active recipe), or None when there is no recipe to read."""
    path = Path(recipe) if recipe is not None else active_recipe()
    if path is None:
        return None
    try:
        cfg = load_config(path)
    except NexaError as err:
        raise NexaError(f"{err}; DataQuery reads the line of NEXA_CONFIG (else configs/default.yaml): fix that "
                        "recipe or pass DataQuery(line=...)") from None
    return line_of(cfg.data, cfg.training.distributed.seed)
