"""Sharded train splits (`data.shards: N`): write the shards, name them, and read one shard or one rank's shards.

A version prepared with N > 1 stores its train split as a folder of N Parquet files, `train.parquet/shard-000.parquet`
.. `shard-<N-1>.parquet`, contiguous blocks of the split in order: reading the folder gives the whole split, row for
row, so every reader of train.parquet (trainer, evaluator, distillation inputs, DataQuery) works unchanged.
Validation and test stay single files: they are evaluated whole. Shard ids are 0-based ("000", "1" and 1 name the
same shard); with world size W, rank r reads shards r, r+W, r+2W, ... (N must be a multiple of W).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nexa_core.common.errors import NexaError

SHARDED_SPLIT = "train"
SHARD_WIDTH = 3  # data.shards <= 1000, so shard-000 .. shard-999 sort in shard order


def shard_file(index: int) -> str:
    return f"shard-{index:0{SHARD_WIDTH}d}.parquet"


def write_shards(table: pa.Table, folder: Path, count: int) -> None:
    """`table` as `count` contiguous, near-equal shards in `folder` (the first `len % count` get one row more)."""
    folder.mkdir(parents=True, exist_ok=True)
    size, extra = divmod(table.num_rows, count)
    start = 0
    for index in range(count):
        length = size + (1 if index < extra else 0)
        pq.write_table(table.slice(start, length), folder / shard_file(index))
        start += length


def shard_count(version_dir: Path) -> int:
    """How many shards the version's train split has (1: an unsharded version, or one written before shards)."""
    try:
        meta = json.loads((Path(version_dir) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NexaError(f"{version_dir}: no readable dataset.json; prepare the data again") from None
    return int(meta.get("shards", 1))


def parse_shard(shard: Union[str, int], count: int) -> int:
    """A shard id ("001", "1" or 1) as an index into 0..count-1, or a one-line error naming `shard`."""
    last = f"{count - 1:0{SHARD_WIDTH}d}"
    text = str(shard).strip() if isinstance(shard, (str, int)) and not isinstance(shard, bool) else ""
    if not text.isdigit():
        raise NexaError(f"shard: {shard!r} is not a shard number; use 000..{last} (this version has {count} "
                        "shard(s), data.shards)")
    index = int(text)
    if index >= count:
        raise NexaError(f"shard: {shard!r} is out of range; this version has {count} shard(s) (data.shards), "
                        f"use 000..{last}")
    return index


def read_shard(version_dir: Path, shard: Union[str, int], columns: list[str] | None = None) -> pd.DataFrame:
    """One shard of the version's train split; an unsharded version has one shard, "000", the whole split."""
    version_dir = Path(version_dir)
    count = shard_count(version_dir)
    index = parse_shard(shard, count)
    path = version_dir / f"{SHARDED_SPLIT}.parquet"
    if count > 1:
        path = path / shard_file(index)
    if not path.exists():
        raise NexaError(f"{path} is missing; the version folder is incomplete, prepare the data again")
    return pd.read_parquet(path, columns=columns)


def rank_shards(count: int, world_size: int, rank: int) -> list[int]:
    """The shards rank `rank` of `world_size` reads: rank, rank + W, ...; each shard goes to exactly one rank."""
    if count % world_size:
        raise NexaError(f"data.shards={count} is not a multiple of training.distributed.world_size={world_size}; "
                        f"set data.shards to a multiple of {world_size} so every rank reads whole shards")
    if not 0 <= rank < world_size:
        raise NexaError(f"rank {rank} is outside world size {world_size}")
    return list(range(rank, count, world_size))


def read_rank_shards(version_dir: Path, world_size: int, rank: int, columns: list[str] | None = None, *,
                     even: bool = False) -> pd.DataFrame:
    """The rows of the train split that rank `rank` of `world_size` reads: its shards, in shard order. `even`: cut
    to the smallest rank's row count (at most N/W rows fewer), so every DDP rank runs the same number of batches."""
    version_dir = Path(version_dir)
    count = shard_count(version_dir)
    frames = [read_shard(version_dir, index, columns) for index in rank_shards(count, world_size, rank)]
    frame = pd.concat(frames, ignore_index=True)
    if even:
        frame = frame.iloc[:min(rank_row_counts(version_dir, world_size))]
    return frame


def rank_row_counts(version_dir: Path, world_size: int) -> list[int]:
    """Rows each rank's shards hold, from the Parquet footers only (no other rank's rows are read)."""
    count = shard_count(version_dir)
    folder = Path(version_dir) / f"{SHARDED_SPLIT}.parquet"
    sizes = [pq.ParquetFile(folder / shard_file(i) if count > 1 else folder).metadata.num_rows for i in range(count)]
    return [sum(sizes[i] for i in rank_shards(count, world_size, rank)) for rank in range(world_size)]
