"""The environment fingerprint (`nexa summary`, the `infra_report` asset, every training run).

The report holds versions (Python, torch, CUDA, cuDNN, NCCL, transformers, dagster), the allow-listed
environment, GPU inventory, CPU and memory, the project's git commit and the manifests present. Its
hash covers only the stable parts (versions, environment, GPU models and driver, CPU model, commit), so
two runs with the same hash ran the same code on the same software and hardware kind.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from nexa_core.telemetry.host import host_inventory
from nexa_core.telemetry.nvml import open_gpus
from nexa_core.telemetry.secrets import redact, safe_environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "transformers", "accelerate", "datasets", "dagster", "nvidia-ml-py", "nexacompute")
STABLE_KEYS = ("python", "packages", "cuda", "cudnn", "nccl", "environment", "gpu_models", "driver", "cpu_model",
               "git_commit")


def _version(dist: str) -> str | None:
    # Read from installed metadata: nexa_core must not import dagster, and this is cheaper anyway.
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def torch_build() -> dict:
    """CUDA, cuDNN and NCCL versions of the torch build (None where the build has none, e.g. CPU)."""
    try:
        import torch
    except ImportError:
        return {"cuda": None, "cudnn": None, "nccl": None, "cuda_available": False}
    nccl = None
    try:
        if torch.cuda.is_available() or torch.version.cuda:
            version = torch.cuda.nccl.version()
            nccl = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    except Exception:
        nccl = None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"cuda": torch.version.cuda, "cudnn": None if cudnn is None else str(cudnn), "nccl": nccl,
            "cuda_available": torch.cuda.is_available()}


def git_commit(root: Path = PROJECT_ROOT) -> dict:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return {"commit": None, "dirty": None, "note": f"not a git checkout ({out.stderr.strip()[:120]})"}
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return {"commit": out.stdout.strip(), "dirty": bool(status.stdout.strip()), "note": None}
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"commit": None, "dirty": None, "note": f"git is not available ({type(err).__name__})"}


def gpu_inventory(nvml: Any = None) -> tuple[list[dict], str | None]:
    gpus, reason = open_gpus(nvml)
    if gpus is None:
        return [], reason
    try:
        return [dict(g) for g in gpus.static], None
    finally:
        gpus.close()


def environment_report(*, nvml: Any = None, manifests_dir: Path | None = None, root: Path = PROJECT_ROOT) -> dict:
    gpus, no_gpu = gpu_inventory(nvml)
    host = host_inventory()
    git = git_commit(root)
    report = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "packages": {name: _version(name) for name in PACKAGES},
        **torch_build(),
        "environment": safe_environment(),
        "gpus": gpus,
        "gpu_count": len(gpus),
        "no_gpu_reason": no_gpu,
        "gpu_models": sorted(g["name"] for g in gpus),
        "driver": gpus[0]["driver"] if gpus else None,
        "cpu_model": host["cpu_model"],
        "host": host,
        "git_commit": git["commit"],
        "git": git,
    }
    if manifests_dir is not None:
        report["manifests"] = present_manifests(manifests_dir)
    report["fingerprint"] = fingerprint_hash(report)
    return redact(report)


def fingerprint_hash(report: dict) -> str:
    stable = {k: report.get(k) for k in STABLE_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def present_manifests(manifests_dir: Path) -> list[dict]:
    """Run manifests in the folder (not the infra report itself), newest first, with size and mtime."""
    rows = []
    for path in Path(manifests_dir).glob("*.json"):
        if path.name == "infra_report.json":
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        rows.append({"run_id": path.stem, "bytes": stat.st_size,
                     "modified": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()})
    return sorted(rows, key=lambda r: r["modified"], reverse=True)
