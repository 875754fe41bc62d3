"""Where the steps that change the deployment register run (each model line's `promotion`).

The register (`NEXA_DURABLE/deploy`: `current_model`, its history, the champion the next promotion must beat) is
a folder on one machine. On one machine, or where every worker mounts that folder, nothing needs routing. On Celery
workers with disks of their own, two promotions on two default-queue workers would each see their own champion and
write their own `current_model`; so a fleet sets, before the code location loads on the launcher and the workers,

    NEXA_DEPLOY_QUEUE=deploy      # the promotion steps go to this Celery queue; unset: the default queue

and starts exactly one worker that consumes it, on the node that serves the model (`-Q dagster,deploy`). Its
register is then the only one, and the champion gate always compares against what is really deployed."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from nexa_core.common.errors import NexaError
from nexa_dagster.gpu_step import CELERY_QUEUE_TAG, GPU_POOL

_QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def deploy_step_tags(environ: Mapping[str, str] | None = None) -> dict:
    """The op tags of a step that writes the register: its Celery queue when NEXA_DEPLOY_QUEUE names one."""
    env = os.environ if environ is None else environ
    queue = env.get("NEXA_DEPLOY_QUEUE", "").strip()
    if not queue:
        return {}
    if not _QUEUE_RE.fullmatch(queue) or queue == GPU_POOL:
        raise NexaError(f"NEXA_DEPLOY_QUEUE={queue!r}: expected a Celery queue name of letters, digits, '.', '-' or '_' "
                        f"other than '{GPU_POOL}' (the GPU steps' queue), e.g. deploy; or unset it for the default queue")
    return {CELERY_QUEUE_TAG: queue}


# Read once, when the code location loads, like GPU_STEP.
DEPLOY_STEP_TAGS = deploy_step_tags()
