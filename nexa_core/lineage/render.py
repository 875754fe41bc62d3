"""The lineage chain and a reproduction's comparison as `nexa lineage` / `nexa reproduce` print them."""

from __future__ import annotations

from typing import Any

from nexa_core.lineage.chain import Node


def chain_text(nodes: list[Node]) -> str:
    """One block per node, model first; `<-` reads "made from"."""
    lines: list[str] = []
    for i, node in enumerate(nodes):
        lines.append(f"{'<- ' if i else ''}{node.kind}: {node.id}")
        lines += [f"     {key}: {_value(value)}" for key, value in node.details.items() if value is not None]
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items() if v is not None) or "-"
    return str(value)


def comparison_table(rows: list[tuple[str, Any, Any, Any]]) -> str:
    """metric | original | reproduced | difference, numbers to 6 significant digits (the difference unrounded
    below that, so a tiny drift is not printed as 0)."""
    header = ("metric", "original", "reproduced", "difference")
    body = [(name, _number(a), _number(b), _number(d, exact=True)) for name, a, b, d in rows]
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *body))


def _number(value: Any, exact: bool = False) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        if exact and value != 0 and abs(value) < 1e-6:
            return f"{value:.3e}"
        return f"{value:.6g}"
    return str(value)
