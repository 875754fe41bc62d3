"""`infra_report`: the environment fingerprint (`nexa summary`) as an asset, refreshed nightly right after the
retention run (`nightly_maintenance`, 03:00 UTC), so the report lists the manifests that survived it.
"""

import dagster as dg

from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import to_metadata
from nexa_dagster.resources import NexaRecipe, NVMLTelemetryResource


@dg.asset(group_name="infra", kinds={"json"},
          description="Python/torch/CUDA/cuDNN/NCCL/transformers/dagster versions, allow-listed NCCL/OMP/tokenizer "
                      "environment, GPUs, CPU and memory, git commit, manifests: runs/manifests/infra_report.json.")
@refusals_as_failures
def infra_report(context: dg.AssetExecutionContext, nexa: NexaRecipe,
                 telemetry: NVMLTelemetryResource) -> dg.MaterializeResult:
    from nexa_core.telemetry.report import summary_lines, write_infra_report

    path, report = write_infra_report(nexa.layout(), nvml=telemetry.nvml_module())
    context.log.info("\n" + "\n".join(summary_lines(report)))  # the report is already free of secrets
    packages = report["packages"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(report["fingerprint"]),  # unchanged environment, unchanged version
        metadata=to_metadata({
            "fingerprint": report["fingerprint"],
            "python": report["python"],
            **{name: packages.get(name) for name in ("torch", "transformers", "dagster")},
            "cuda": report["cuda"], "cudnn": report["cudnn"], "nccl": report["nccl"],
            "gpu_count": report["gpu_count"],
            "gpu": None if report["gpu_count"] else f"none on this machine ({report['no_gpu_reason']})",
            "gpus": dg.MetadataValue.json(report["gpus"]),  # the inventory as recorded, not a table
            "cpu_count": report["host"]["cpu_count"],
            "memory_total_mb": report["host"]["memory_total_mb"],
            "git_commit": report["git_commit"] or report["git"]["note"],
            "manifests": len(report["manifests"]),
            "environment": report["environment"],
            "path": path,
        }),
    )


infra_report_job = dg.define_asset_job("infra_report_job", selection=[infra_report],
                                       description="Refresh runs/manifests/infra_report.json.")

nightly_infra_report = dg.ScheduleDefinition(name="nightly_infra_report", job=infra_report_job,
                                             cron_schedule="15 3 * * *", execution_timezone="UTC",
                                             default_status=dg.DefaultScheduleStatus.RUNNING)
