"""Write the infra report (`runs/manifests/infra_report.json`) atomically: `nexa summary` and the asset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.layout import Layout
from nexa_core.telemetry.fingerprint import environment_report

REPORT_NAME = "infra_report.json"


def write_infra_report(layout: Layout, nvml: Any = None) -> tuple[Path, dict]:
    report = environment_report(nvml=nvml, manifests_dir=layout.manifests_dir)
    path = layout.manifests_dir / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, report)
    return path, report


def summary_lines(report: dict) -> list[str]:
    pk = report["packages"]
    gpus = ", ".join(f"{g['name']} ({g['memory_total_mb']:.0f} MB, {g['uuid']})" for g in report["gpus"])
    git = report["git_commit"] or report["git"]["note"]
    return [
        f"fingerprint  {report['fingerprint']}",
        f"python       {report['python']}   torch {pk['torch']}   transformers {pk['transformers']}   "
        f"dagster {pk['dagster']}",
        f"cuda         {report['cuda']}   cudnn {report['cudnn']}   nccl {report['nccl']}   driver {report['driver']}",
        f"gpus         {gpus or 'none (' + str(report['no_gpu_reason']) + ')'}",
        f"host         {report['host']['cpu_count']} x {report['cpu_model']}, "
        f"{(report['host']['memory_total_mb'] or 0) / 1024:.1f} GiB",
        f"environment  {' '.join(f'{k}={v}' for k, v in report['environment'].items()) or '(none of NCCL_*/OMP_*/TOKENIZERS_*)'}",
        f"git          {git}{' (uncommitted changes)' if report['git'].get('dirty') else ''}",
        f"manifests    {len(report.get('manifests', []))}",
    ]
