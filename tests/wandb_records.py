"""Read an offline W&B run file (`run-<id>.wandb`) without W&B's servers.

wandb 0.31 dropped its Python reader (`wandb.sdk.internal.datastore`); the file is still LevelDB's log format:
a 7-byte header (`:W&B`, magic, version), then 32 KiB blocks of records, each with a 7-byte header (CRC32C,
little-endian length, type: 1 full, 2 first, 3 middle, 4 last) holding a serialized `wandb_internal_pb2.Record`.
A block whose tail is shorter than a record header is padding."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, LAST = 1, 4


def records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, parts = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        pos += HEADER
        if kind == 0 and length == 0:  # zero fill past the last record
            continue
        parts, pos = parts + data[pos:pos + length], pos + length
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def history(path: Path) -> list[dict]:
    """Each history row as {key: value}, `_step` included."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def run_info(path: Path) -> tuple[str, str, str, dict]:
    """(run id, display name, project, config) of the run record."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            config = {item.key: json.loads(item.value_json) for item in run.config.update}
            return run.run_id, run.display_name, run.project, config
    raise AssertionError(f"no run record in {path}")
