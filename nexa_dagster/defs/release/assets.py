"""Release assets, for any evaluated model: `run_manifest` -> `model_package` -> `promotion` and
`run_mirror` (durable copies: S3 under NEXA_S3_PREFIX, else the local mirror folder).

`release_assets` builds the chain once per model line (the fine-tuned model; the distilled student,
per input partition), so both lines record, package and promote through the same code. A line's `promotion` is
its champion/challenger decision: it deploys the model only if it beats the one deployed now, and records
"kept champion ..." otherwise (an expected outcome, not a failure). What is deployed is the one `current_model`
asset (`deployment.py`).
"""

import json

import dagster as dg

from nexa_core.evaluation.report import EvaluationReport
from nexa_core.release import steps
from nexa_core.training.handoff import TrainedModel
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.release.deployment import observation
from nexa_dagster.defs.release.gates import threshold_check
from nexa_dagster.defs.release.lines import LINES, ModelLine
from nexa_dagster.deploy_step import DEPLOY_STEP_TAGS
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import to_metadata
from nexa_dagster.resources import GPUTrainerResource, NexaRecipe, S3StorageResource
from nexa_dagster.resources.tracking import tracking_values


def release_assets(line: ModelLine) -> list[dg.AssetsDefinition]:
    """The model's output names the dataset it was trained and tested on (`model["dataset"]`)."""
    model, report, prefix = line.model, line.report, line.prefix
    common = {"group_name": "release", "partitions_def": TEACHER_INPUTS if line.partitioned else None}
    manifest_name, package_name = f"{prefix}run_manifest", f"{prefix}model_package"

    @dg.asset(name=manifest_name, kinds={"json"}, description="runs/manifests/<run_id>.json (NexaRunManifest).",
              ins={"model": dg.AssetIn(model), "report": dg.AssetIn(report)}, **common)
    @refusals_as_failures
    def run_manifest(nexa: NexaRecipe, model: TrainedModel, report: EvaluationReport) -> dg.Output[dict]:
        path = steps.record_manifest(nexa.core(), model.run_id, nexa.layout(), model.dataset, report.values,
                                     model.train_metrics)
        manifest = json.loads(path.read_text())
        # The model's MLflow run now holds the test metrics, the manifest and the registered model.
        return dg.Output({"run_id": manifest["run_id"], "path": str(path)},
                         metadata={"manifest_path": dg.MetadataValue.path(str(path)),
                                   "manifest": dg.MetadataValue.json(manifest),
                                   **to_metadata(tracking_values(model.run_dir))})

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

    @dg.asset(name=line.promotion, kinds={"json"}, ins={"package": dg.AssetIn(package_name)}, **common,
              op_tags=DEPLOY_STEP_TAGS,  # the one worker that holds the deployment register, on a Celery fleet
              description="Champion/challenger: deploys this model to current_model only if it beats the deployed one "
                          "on its test split (evaluation.promotion); otherwise keeps the champion and says why.")
    @refusals_as_failures
    def promotion(context: dg.AssetExecutionContext, nexa: NexaRecipe, trainer: GPUTrainerResource,
                  package: dict) -> dg.Output[dict]:
        from nexa_core.release import deploy
        from nexa_core.release.promotion import read_decision

        layout, run_id = nexa.layout(), package["run_id"]
        previous = deploy.current_release(layout)
        origin = {"by": "Dagster", "dagster_run_id": context.run_id, "line": line.name}
        try:  # the same decision as `nexa deploy`: the run's gates, then the champion on the run's test split
            path = steps.deploy_run(layout, run_id, cfg=trainer.apply(nexa.core()), origin=origin)
        except steps.ChampionKept as kept:  # an expected outcome, not a failure; other refusals fail the step
            outcome, promoted = kept.outcome, False
        else:
            record = next((r for r in reversed(deploy.history(layout)) if r.get("dagster_run_id") == context.run_id), {})
            outcome, promoted = f"deployed {run_id} at {path} (previous: {previous or 'none'})", True
            context.log_event(observation(layout))  # current_model names the new model in this run already
        context.log.info(outcome)
        decision = read_decision(layout, run_id)
        values = {"outcome": outcome, "promoted": promoted, "run_id": run_id, "champion_run_id": previous}
        if decision and decision.get("champion_run_id") == previous:
            values.update(reason=decision["reason"], comparison=dg.MetadataValue.json(decision),
                          **{k: decision.get(k) for k in ("challenger_value", "champion_value", "improvement")})
        if promoted and record.get("forced"):
            values.update(forced=True, overrides=dg.MetadataValue.json(record["overrides"]))
        return dg.Output({"run_id": run_id, "promoted": promoted, "current_run_id": deploy.current_release(layout)},
                         metadata=to_metadata(values))

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

    return [run_manifest, model_package, promotion, run_mirror]


@dg.definitions
def release_chains() -> dg.Definitions:
    return dg.Definitions(assets=[asset for line in LINES for asset in release_assets(line)],
                          asset_checks=[threshold_check(line) for line in LINES])
