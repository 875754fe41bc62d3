"""Promotion gates: which configured metric minimums a model's evaluation misses, each said as a reason that
names the metric, its value, the minimum and the recipe key that sets it."""

from __future__ import annotations

BELOW = "train longer or on more data, or lower the threshold"
UNMEASURED = "remove the threshold: this model's evaluation does not report that metric"


def gate_failures(metrics: dict, thresholds: dict[str, float]) -> list[str]:
    """E.g. ["accuracy 0.600 < 0.700 (evaluation.thresholds.accuracy)"]; empty when every gate passes."""
    failures = []
    for name, value, minimum in _misses(metrics, thresholds):
        key = f"evaluation.thresholds.{name}"
        failures.append(f"{name} not reported, minimum {minimum:.3f} ({key})" if value is None else
                        f"{name} {value:.3f} < {minimum:.3f} ({key})")
    return failures


def gate_reason(metrics: dict, thresholds: dict[str, float]) -> str | None:
    """The failures as one line ending in how to change the outcome; None when every gate passes."""
    misses = _misses(metrics, thresholds)
    if not misses:
        return None
    fixes = [fix for fix, applies in ((BELOW, any(v is not None for _, v, _ in misses)),
                                      (UNMEASURED, any(v is None for _, v, _ in misses))) if applies]
    return "; ".join(gate_failures(metrics, thresholds) + fixes)


def _misses(metrics: dict, thresholds: dict[str, float]) -> list[tuple[str, float | None, float]]:
    misses = []
    for name, minimum in sorted(thresholds.items()):
        value = metrics.get(name)
        measured = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not measured or value < minimum:
            misses.append((name, float(value) if measured else None, float(minimum)))
    return misses
