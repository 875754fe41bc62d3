"""`nexa`: the runbooks' scripts as one command line, calling the same core steps as the Dagster assets."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from nexa_core.common.envfiles import load_env_files
from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import StorageConfig, load_config
from nexa_core.storage.settings import StorageSettings


def _config(args):
    return load_config(args.config, args.override)


def _layout(args) -> Layout:
    # Commands that act on an existing run only need storage roots: from --config if given, else the env.
    storage = _config(args).storage if getattr(args, "config", None) else StorageConfig()
    return Layout.from_storage(storage)


def cmd_prepare(args) -> None:
    cfg = _config(args)
    dataset = prepare(cfg, Layout.from_storage(cfg.storage))
    print(json.dumps({"version": dataset.version, "label": dataset.label, "line": dataset.line,
                      "path": str(dataset.path), "counts": dataset.counts,
                      "drops": dataset.drop_counts, "labels": dataset.labels}, indent=2))


def cmd_train(args) -> None:
    cfg = _config(args)
    from nexa_core.evaluation.evaluate import evaluate_run
    from nexa_core.training.preflight import check_training
    from nexa_core.training.steps import claim_run, train_run

    layout = Layout.from_storage(cfg.storage)
    # Everything that can be refused without data, before a dataset version or a run folder is written.
    storage = _reachable(StorageSettings.from_env())
    check_training(cfg)
    dataset = prepare(cfg, layout)
    from nexa_core.data.validation import format_drops
    from nexa_core.telemetry import measure

    with claim_run(cfg, dataset.version, layout, args.run_id) as claim:
        run_id = claim.run_id
        print(f"{claim.message} on dataset {dataset.version} (rows dropped: {format_drops(dataset.drop_counts)})",
              flush=True)
        telemetry_dir = layout.run_dir(run_id) / "telemetry"
        with measure(cfg.telemetry, telemetry_dir, "train") as train_t:
            result = train_run(cfg, dataset.path, run_id, layout, storage=storage)
    with measure(cfg.telemetry, telemetry_dir, "evaluate"):
        report = evaluate_run(cfg, run_id, dataset.path, layout)
    manifest = steps().record_manifest(cfg, run_id, layout, dataset, report, result.train_metrics)
    steps().mirror_run(layout, run_id, storage)
    print(json.dumps({"run_id": run_id, "final": result.final_dir, "manifest": str(manifest),
                      "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "loss": report["loss"],
                      "train_cost_usd": (train_t.summary or {}).get("cost_usd"),
                      "train_gpu_hours": (train_t.summary or {}).get("gpu_hours")}, indent=2))


def cmd_evaluate(args) -> None:
    from nexa_core.evaluation.evaluate import evaluate_model, inference_settings
    from nexa_core.training.preflight import check_max_length, model_config

    cfg = _config(args)
    layout = Layout.from_storage(cfg.storage)
    checkpoint = Path(args.checkpoint).expanduser().resolve()
    if not checkpoint.is_dir():
        raise NexaError(f"--checkpoint {checkpoint}: no such folder; pass a run's final/ or a checkpoint-N folder")
    check_max_length(model_config(str(checkpoint), field="--checkpoint"), cfg.model.max_length, str(checkpoint))
    dataset = prepare(cfg, layout)
    out = Path(args.output) if args.output else checkpoint.parent / f"eval_{checkpoint.name}"
    report = evaluate_model(checkpoint, dataset.path, out, split=args.split, batch_size=cfg.evaluation.batch_size,
                            max_length=cfg.model.max_length, save_predictions=cfg.evaluation.save_predictions,
                            **inference_settings(cfg))
    print(json.dumps({k: report[k] for k in ("accuracy", "macro_f1", "loss", "num_examples", "metrics_path")}, indent=2))


def cmd_package(args) -> None:
    layout = _layout(args)
    storage = _reachable(StorageSettings.from_env())  # before the tarball is built
    path = steps().package_run(layout, args.run_id, force=args.force)
    steps().mirror_run(layout, args.run_id, storage)
    print(path)


def cmd_pull(args) -> None:
    from nexa_core.storage.mirror import pull_run
    from nexa_core.storage.settings import open_durable

    layout = _layout(args)
    # A missing bucket is said as such, not taken for a run that was never mirrored.
    store = open_durable(_reachable(StorageSettings.from_env()), layout)
    print(json.dumps(pull_run(store, layout, args.run_id, overwrite=args.overwrite), indent=2))


def cmd_deploy(args) -> None:
    from nexa_core.release import deploy
    from nexa_core.release.deployment import current_deployment, describe

    layout = _layout(args)
    if args.rollback:
        if args.run_id is not None:
            raise NexaError(f"--rollback takes no run id (got {args.run_id!r}); "
                            "roll back with `nexa deploy --rollback`, or deploy a run with `nexa deploy <run_id>`")
        run_id = deploy.rollback(layout)
        print(f"rolled back to {run_id}")
    elif args.run_id is not None:  # an empty id is refused by the run-id check, not taken as "show"
        steps().deploy_run(layout, args.run_id, force=args.force)
        print(f"deployed {args.run_id}")
    print(describe(current_deployment(layout)))  # with no argument, only this: what is deployed now


def cmd_cleanup(args) -> None:
    from nexa_core.retention.cleanup import cleanup

    if args.days is None and args.prune_size is None:
        raise NexaError("nexa cleanup: give --days N and/or --prune-size SIZE (e.g. --days 7 --prune-size +2G)")
    report = cleanup(_layout(args), storage=StorageSettings.from_env(), days=args.days, prune_size=args.prune_size,
                     keep_latest=args.keep_latest, apply=args.apply, archive=args.archive)
    print(report["table"])
    if not report["applied"]:
        print(f"dry run: would free {report['would_free_bytes']} bytes; pass --apply to delete")
    else:
        print(f"freed {report['freed_bytes']} bytes; deleted {len(report['deleted'])}, skipped {len(report['skipped'])}")


def _reachable(storage: StorageSettings) -> StorageSettings:
    from nexa_core.storage.settings import check_reachable

    check_reachable(storage)
    return storage


def steps():
    from nexa_core.release import steps as module

    return module


def prepare(cfg, layout):  # lazy: `nexa --help` must not load pandas
    from nexa_core.data.prepare import dataset_for as run

    return run(cfg, layout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexa", description="NexaCompute: train, evaluate, package, deploy.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p, required=True):
        p.add_argument("--config", required=required, help="YAML recipe, e.g. configs/default.yaml")
        p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="dotted override, e.g. training.optimizer.lr=0.0001 (repeatable)")
        return p

    with_config(sub.add_parser("prepare", help="validate, split and version the dataset")).set_defaults(fn=cmd_prepare)
    p = with_config(sub.add_parser("train", help="train (resuming if interrupted), evaluate, write the manifest"))
    p.add_argument("--run-id", help="resume or name this run (<name>_<YYYYMMDD>_<HHMMSS>)")
    p.set_defaults(fn=cmd_train)
    p = with_config(sub.add_parser("evaluate", help="evaluate a model folder on the config's dataset"))
    p.add_argument("--checkpoint", required=True, help="a run's final/ or a checkpoint-N folder")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--output", help="folder for metrics.json and predictions (default: beside the checkpoint)")
    p.set_defaults(fn=cmd_evaluate)
    p = with_config(sub.add_parser("package", help="build the verified tarball of a finished run"), required=False)
    p.add_argument("run_id")
    p.add_argument("--force", action="store_true", help="package even if evaluation gates fail")
    p.set_defaults(fn=cmd_package)
    p = with_config(sub.add_parser("deploy", help="promote a run to deploy/current_model, or roll back"), required=False)
    p.add_argument("run_id", nargs="?")
    p.add_argument("--rollback", action="store_true", help="re-point current_model at the previous release")
    p.add_argument("--force", action="store_true",
                   help="deploy even if it fails its evaluation gates or loses to the champion (the history records it)")
    p.set_defaults(fn=cmd_deploy)
    p = with_config(sub.add_parser("pull", help="restore a mirrored run from durable storage (verified)"),
                    required=False)
    p.add_argument("run_id")
    p.add_argument("--overwrite", action="store_true", help="replace a local copy that differs")
    p.set_defaults(fn=cmd_pull)
    from nexa_core.retention import DAYS_HELP, KEEP_LATEST_HELP, PRUNE_SIZE_HELP

    p = with_config(sub.add_parser("cleanup", help="prune old checkpoints safely (dry run unless --apply)"),
                    required=False)
    p.add_argument("--days", type=float, help=DAYS_HELP)
    p.add_argument("--prune-size", help=PRUNE_SIZE_HELP)
    p.add_argument("--keep-latest", type=int, default=2, help=KEEP_LATEST_HELP)
    p.add_argument("--apply", action="store_true", help="delete what the plan lists (default: only show it)")
    p.add_argument("--archive", action="store_true", help="copy each candidate to durable storage (S3) first")
    p.set_defaults(fn=cmd_cleanup)
    from nexa_core.cli.analyze import add_parser as add_analyze_parser
    from nexa_core.cli.distill import add_parser
    from nexa_core.cli.lineage import add_parser as add_lineage_parsers
    from nexa_core.cli.node import add_parser as add_node_parser
    from nexa_core.cli.telemetry import add_parsers as add_telemetry_parsers
    from nexa_core.cli.tune import add_parser as add_tune_parser

    add_parser(sub, with_config)
    add_lineage_parsers(sub, with_config, _layout)
    add_telemetry_parsers(sub, with_config, _layout)
    add_analyze_parser(sub, with_config, _layout)
    add_tune_parser(sub, with_config)
    add_node_parser(sub, with_config)
    return parser


def _attach_dash_values(argv: list[str]) -> list[str]:
    """`--prune-size -2G` as `--prune-size=-2G`, so the size check explains the sign (argparse would read `-2G` as an
    unknown option and print only "expected one argument")."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--prune-size" and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"--prune-size={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_dash_values(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        load_env_files()  # .env, then .env.local, under the real environment (nexa_core/common/envfiles.py)
        args.fn(args)
    except NexaError as err:
        print(f"nexa {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
