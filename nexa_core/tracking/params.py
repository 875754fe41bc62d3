"""A run's config as tracking params: flattened to dotted keys, with anything secret taken out.

Params are copied to tracking servers other people read, so the config goes through the same redaction as reports
(telemetry/secrets.py: secret-named keys dropped, secret env values masked) and URLs lose their user:password part."""

from __future__ import annotations

import re
from typing import Any

from nexa_core.telemetry.secrets import redact

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
MAX_VALUE = 6000  # MLflow's limit on a param value (longer values are refused, not truncated)


def strip_userinfo(text: str) -> str:
    """`https://user:pass@host/x` -> `https://host/x` (credentials in a URL never leave the process)."""
    return _USERINFO.sub(lambda m: m.group("scheme"), text)


def scrub(value: Any) -> Any:
    """Redacted (secret-named keys, secret env values) and with URL credentials stripped, at any depth."""
    value = redact(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return strip_userinfo(value) if isinstance(value, str) else value


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"training": {"optimizer": {"lr": 1e-4}}} -> {"training.optimizer.lr": 1e-4}; lists stay one value."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_params(config: dict) -> dict[str, str]:
    """The params logged for a run: every config key, as text MLflow and W&B accept."""
    return {k: str(v)[:MAX_VALUE] for k, v in flatten(scrub(config)).items()}
