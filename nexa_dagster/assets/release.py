"""Release assets: `run_manifest` -> `model_package` -> `deployed_model`."""

import json
from types import SimpleNamespace

import dagster as dg

from nexa_core import steps
from nexa_dagster.resources import NexaRecipe

@dg.asset(group_name="release", kinds={"json"}, description="runs/manifests/<run_id>.json (NexaRunManifest).")
def run_manifest(context: dg.AssetExecutionContext, nexa: NexaRecipe, trained_model: dict,
                 evaluation_report: dict, training_dataset: dict) -> dg.Output[dict]:
    dataset = SimpleNamespace(**training_dataset)
    path = steps.record_manifest(nexa.core(), trained_model["run_id"], nexa.layout(), dataset, evaluation_report,
                                 trained_model["train_metrics"])
    manifest = json.loads(path.read_text())
    return dg.Output({"run_id": manifest["run_id"], "path": str(path)},
                     metadata={"manifest_path": dg.MetadataValue.path(str(path)), "manifest": dg.MetadataValue.json(manifest)})

@dg.asset(group_name="release", kinds={"tar"}, description="Verified tarball: weights, tokenizer, config, checksums.")
def model_package(context: dg.AssetExecutionContext, nexa: NexaRecipe, run_manifest: dict) -> dg.Output[dict]:
    from nexa_core.packaging import sha256_file

    # The blocking check on evaluation_report already gated this run; the core gate re-checks for CLI parity.
    path = steps.package_run(nexa.layout(), run_manifest["run_id"])
    digest = sha256_file(path)
    return dg.Output({"run_id": run_manifest["run_id"], "path": str(path), "sha256": digest},
                     metadata={"package_path": dg.MetadataValue.path(str(path)), "sha256": digest,
                               "size_bytes": path.stat().st_size})

@dg.asset(group_name="release", kinds={"huggingface"}, description="deploy/current_model, atomically promoted.")
def deployed_model(context: dg.AssetExecutionContext, nexa: NexaRecipe, model_package: dict) -> dg.Output[dict]:
    from nexa_core import deploy

    layout = nexa.layout()
    previous = deploy.current_release(layout)
    path = steps.deploy_run(layout, model_package["run_id"])
    context.log.info(f"deployed model {model_package['run_id']} at {path}")
    return dg.Output({"run_id": model_package["run_id"], "path": str(path)},
                     metadata={"current_model": dg.MetadataValue.path(str(path)), "run_id": model_package["run_id"],
                               "previous_run_id": str(previous), "history_length": len(deploy.history(layout))})
