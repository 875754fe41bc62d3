"""Release assets, for any evaluated model: `run_manifest` -> `model_package` -> `deployed_model` and
`run_mirror` (durable copies: S3 under NEXA_S3_PREFIX, else the local mirror folder).

`release_assets` builds the chain once per model line (the fine-tuned model; the distilled student,
per input partition), so both lines record, package and promote through the same code.
"""

import json

import dagster as dg

from nexa_core.evaluation.report import EvaluationReport
from nexa_core.release import steps
from nexa_core.training.handoff import TrainedModel
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.release.gates import threshold_check
from nexa_dagster.defs.release.lines import STUDENT_LINE, TRAINED_LINE, ModelLine
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import to_metadata
from nexa_dagster.resources import NexaRecipe, S3StorageResource


def release_assets(line: ModelLine) -> list[dg.AssetsDefinition]:
    """The model's output names the dataset it was trained and tested on (`model["dataset"]`)."""
    model, report, prefix = line.model, line.report, line.prefix
    common = {"group_name": "release", "partitions_def": TEACHER_INPUTS if line.partitioned else None}
    manifest_name, package_name, deployed_name = f"{prefix}run_manifest", f"{prefix}model_package", f"{prefix}deployed_model"

    @dg.asset(name=manifest_name, kinds={"json"}, description="runs/manifests/<run_id>.json (NexaRunManifest).",
              ins={"model": dg.AssetIn(model), "report": dg.AssetIn(report)}, **common)
    @refusals_as_failures
    def run_manifest(nexa: NexaRecipe, model: TrainedModel, report: EvaluationReport) -> dg.Output[dict]:
        path = steps.record_manifest(nexa.core(), model.run_id, nexa.layout(), model.dataset, report.values,
                                     model.train_metrics)
        manifest = json.loads(path.read_text())
        return dg.Output({"run_id": manifest["run_id"], "path": str(path)},
                         metadata={"manifest_path": dg.MetadataValue.path(str(path)),
                                   "manifest": dg.MetadataValue.json(manifest)})

    @dg.asset(name=package_name, kinds={"tar"}, description="Verified tarball: weights, tokenizer, config, checksums.",
              ins={"manifest": dg.AssetIn(manifest_name)}, **common)
    @refusals_as_failures
    def model_package(nexa: NexaRecipe, manifest: dict) -> dg.Output[dict]:
        from nexa_core.common.hashing import sha256_file

        # The blocking check upstream already gated this run; the core gate re-checks for CLI parity.
        path = steps.package_run(nexa.layout(), manifest["run_id"])
        digest = sha256_file(path)
        return dg.Output({"run_id": manifest["run_id"], "path": str(path), "sha256": digest},
                         metadata={"package_path": dg.MetadataValue.path(str(path)), "sha256": digest,
                                   "size_bytes": path.stat().st_size})

    @dg.asset(name=deployed_name, kinds={"huggingface"}, description="deploy/current_model, atomically promoted.",
              ins={"package": dg.AssetIn(package_name)}, **common)
    @refusals_as_failures
    def deployed_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, package: dict) -> dg.Output[dict]:
        from nexa_core.common.errors import NexaError
        from nexa_core.release import deploy
        from nexa_core.release.promotion import read_decision

        layout = nexa.layout()
        previous = deploy.current_release(layout)
        decision = read_decision(layout, package["run_id"])
        try:  # the same gate as `nexa deploy`: thresholds from the run's snapshot, the champion check if gated
            path = steps.deploy_run(layout, package["run_id"])
        except NexaError as err:
            raise dg.Failure(description=str(err)) from None
        context.log.info(f"deployed model {package['run_id']} at {path}")
        extra = {"promotion": decision, "champion_run_id": decision["champion_run_id"]} if decision else {}
        return dg.Output({"run_id": package["run_id"], "path": str(path)},
                         metadata=to_metadata({"current_model": path, "run_id": package["run_id"],
                                               "previous_run_id": previous, "history_length": len(deploy.history(layout)),
                                               **extra}))

    @dg.asset(name=f"{prefix}run_mirror", kinds={"s3"}, ins={"package": dg.AssetIn(package_name)}, **common,
              description="final/, best checkpoint, package and manifest mirrored (verified) to durable storage.")
    @refusals_as_failures
    def run_mirror(context: dg.AssetExecutionContext, nexa: NexaRecipe, storage: S3StorageResource,
                   package: dict) -> dg.Output[dict]:
        layout = nexa.layout()
        pushed = steps.mirror_run(layout, package["run_id"], storage.settings())
        context.log.info(f"mirrored {package['run_id']} to {pushed['final']['uri']}")
        return dg.Output(pushed, metadata=to_metadata({**{f"{name}_uri": info.get("uri") for name, info in pushed.items()},
                                                       "uploaded_files": sum(i.get("uploaded", 0) for i in pushed.values()),
                                                       "skipped_files": sum(i.get("skipped", 0) for i in pushed.values())}))

    return [run_manifest, model_package, deployed_model, run_mirror]


@dg.definitions
def release_chains() -> dg.Definitions:
    lines = (TRAINED_LINE, STUDENT_LINE)
    return dg.Definitions(assets=[asset for line in lines for asset in release_assets(line)],
                          asset_checks=[threshold_check(line) for line in lines])
