"""`--prune-size` values: `+2G`, `500M`, `1.5G`, `100K`, `1024` (bytes). Units are powers of 1024, like find(1)."""

from __future__ import annotations

import math
import re

from nexa_core.common.errors import NexaError

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
# An optional leading '+' (find's "larger than"), a number, then K/M/G/T/P optionally spelt KB/KiB, or B.
_SIZE_RE = re.compile(r"^\+?(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGTP])(?:I?B)?|B)?$", re.IGNORECASE)
EXAMPLE = "e.g. --prune-size +2G (units K, M, G, T are powers of 1024; a bare number is bytes)"


def parse_size(text: str) -> int:
    """Bytes for a size such as `+2G`, `500M`, `1.5G`, `100K` or `1024`.

    The leading `+` is optional and means the same as without it: `--prune-size` always selects
    folders *larger than* the size (find's `-size +2G`); find's `-2G` ("smaller than") is refused.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise NexaError(f"--prune-size {text!r} is not a size; {EXAMPLE}")
    raw = str(text).strip()
    if raw.startswith("-"):
        raise NexaError(f"--prune-size {raw!r}: only 'larger than' sizes are supported, not '-SIZE'; {EXAMPLE}")
    match = _SIZE_RE.fullmatch(raw)
    if not match:
        raise NexaError(f"--prune-size {raw!r} is not a size; {EXAMPLE}")
    number, unit = match.groups()
    value = float(number) * _UNITS[(unit or "").upper()]
    if not math.isfinite(value):
        raise NexaError(f"--prune-size {raw!r} is too large; {EXAMPLE}")
    return int(value)


def format_size(n: int) -> str:
    """`512 B`, `1.5 KiB`, `2.0 GiB`."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def format_days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


def format_age(seconds: float) -> str:
    """`3.2d`, `5.0h`, `12m`, `40s` (negative ages, from clocks or future mtimes, show as `0s`)."""
    seconds = max(0.0, seconds)
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds // 60:.0f}m"
    return f"{seconds:.0f}s"
