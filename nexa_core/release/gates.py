"""Promotion gates: which configured metric minimums a model's evaluation misses."""

from __future__ import annotations


def gate_failures(metrics: dict, thresholds: dict[str, float]) -> list[str]:
    failures = []
    for name, minimum in sorted(thresholds.items()):
        value = metrics.get(name)
        if not isinstance(value, (int, float)) or value < minimum:
            failures.append(f"{name}={value if value is not None else 'missing'} < {minimum}")
    return failures
