"""Run ids are `{name}_{YYYYMMDD_HHMMSS}`; validated before they ever become part of a path."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from nexa_core.common.errors import NexaError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}_\d{8}_\d{6}$")


def new_run_id(name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d_%H%M%S")
    return validate_run_id(f"{name}_{stamp}")


def validate_run_id(run_id: str) -> str:
    # The regex forbids separators and dots, so `..` and absolute paths can never get through.
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise NexaError(
            f"run id {run_id!r} is invalid: expected <name>_<YYYYMMDD>_<HHMMSS> with a name of letters, "
            "digits and '-' (e.g. nexa_20260101_120000)"
        )
    return run_id
