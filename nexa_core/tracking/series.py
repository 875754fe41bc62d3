"""A Trainer log record as named scalars, the names TensorBoard and W&B show.

The names follow transformers' own loggers (`rewrite_logs`), so charts look as users of HF's TensorBoard and W&B
integrations expect: `eval_accuracy` -> `eval/accuracy`, `test_x` -> `test/x`, everything else `train/<name>`
(loss, loss_ema, learning_rate, grad_norm, samples_per_second, tokens_per_second, memory)."""

from __future__ import annotations

import math

PREFIXES = ("eval_", "test_")


def scalar_name(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix):]}"
    return f"train/{key}"


def scalars(logs: dict | None) -> dict[str, float]:
    """The numeric, finite values of a log record under their chart names (text and flags are not series)."""
    out = {}
    for key, value in (logs or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[scalar_name(key)] = float(value)
    return out
