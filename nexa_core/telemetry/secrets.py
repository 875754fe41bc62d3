"""What environment may appear in reports: an allow-list of prefixes, minus anything named like a secret.

Reports, fingerprints, metadata and logs go through `safe_environment()` and `redact()`; nothing else
reads os.environ for them, so a credential cannot slip in by a new code path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

# The runbook's NCCL defaults, OpenMP threads, tokenizer parallelism, and which GPUs CUDA may use.
ALLOWED_PREFIXES = ("NCCL_", "OMP_", "TOKENIZERS_", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
                    "PYTORCH_CUDA_ALLOC_CONF", "MKL_NUM_THREADS")
# TOKEN(?!IZER): TOKENIZERS_PARALLELISM is a setting, TOKENIZERS_API_TOKEN is not.
SECRET_NAME = re.compile(r"KEY|TOKEN(?!IZER)|SECRET|PASSW|CREDENTIAL|AUTH|SESSION|SIGNATURE|PRIVATE|^AWS_",
                         re.IGNORECASE)
REDACTED = "<redacted>"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def safe_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables, without any whose name looks like a secret (e.g. NCCL_..._TOKEN)."""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in sorted(env)
            if k.startswith(ALLOWED_PREFIXES) and not is_secret_name(k)}


def secret_values(environ: Mapping[str, str] | None = None, min_len: int = 6) -> set[str]:
    """Values of secret-named variables in the environment (to scrub from free text)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if is_secret_name(k) and len(v) >= min_len}


def redact(value: Any, secrets: set[str] | None = None) -> Any:
    """A copy with secret-named keys dropped and any secret value masked in strings, at any depth."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items() if not (isinstance(k, str) and is_secret_name(k))}
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, REDACTED)
    return value
