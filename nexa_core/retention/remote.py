"""Retention for the durable store (S3 or the local mirror).

The mirror keeps what must never be lost, so `<run_id>/{final,best,package,manifest,...}` are never
candidates. What cleanup archived there (`archive/...`, copied by `--archive` before a local delete) is
pruned by the same rules as local checkpoints: older than `days` (by its completion record) or larger
than `prune_size`. Objects under `archive/` without a completion record (an interrupted archive) are
removed once older than the window too, so remote copies never pile up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

ARCHIVE = "archive"


@dataclass
class RemoteCandidate:
    key: str
    size_bytes: int
    age_seconds: float
    reasons: list[str] = field(default_factory=list)


def plan_remote(store, *, days: float | None, prune_size: int | None, now: float | None = None) -> list[RemoteCandidate]:
    from nexa_core.retention.size import format_days, format_size

    now = time.time() if now is None else now
    out = []
    for key in store.complete_keys(ARCHIVE):
        record = store.read_record(key) or {}
        size = int(record.get("total_bytes", record.get("size", 0)))
        age = now - datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")).timestamp()
        cand = RemoteCandidate(key, size, age)
        if days is not None and age > days * 86400:
            cand.reasons.append(f"archived more than {format_days(days)} ago")
        if prune_size is not None and size > prune_size:
            cand.reasons.append(f"larger than {format_size(prune_size)}")
        if cand.reasons:
            out.append(cand)
    return out


def apply_remote(store, plan: list[RemoteCandidate]) -> int:
    """Delete each candidate (its completion record first, so a partial delete never looks whole)."""
    for cand in plan:
        store.delete_prefix(cand.key)
    return sum(c.size_bytes for c in plan)
