"""`format_plan`: the dry-run table."""

from __future__ import annotations

from nexa_core.retention.model import Plan
from nexa_core.retention.size import format_age, format_days, format_size


def format_plan(plan: Plan) -> str:
    """One row per candidate (path, size, age, action, reason), deletions first, then a summary."""
    rows = [("PATH", "SIZE", "AGE", "ACTION", "REASON")]
    for action, cands in (("delete", plan.delete), ("keep", plan.keep)):
        rows += [(str(c.path), format_size(c.size_bytes), format_age(plan.now - c.mtime), action, c.why)
                 for c in cands]
    rows += [(str(p), "?", "?", "delete", "leftover of an interrupted cleanup") for p in plan.leftovers]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                        row[3].ljust(widths[3]), row[4]]).rstrip() for row in rows]
    rules = [f"older than {format_days(plan.days)}" if plan.days is not None else None,
             f"larger than {format_size(plan.prune_size)}" if plan.prune_size is not None else None]
    lines.append("")
    lines.append(f"rules: {' or '.join(r for r in rules if r) or 'none'}; keeping the latest {plan.keep_latest} "
                 f"checkpoints of each run")
    lines.append(f"would delete {len(plan.delete)} of {len(plan.delete) + len(plan.keep)} items, "
                 f"freeing {format_size(plan.freed_bytes)}")
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)
