"""`nexa lineage` and `nexa reproduce`: the runbook's "trace model outputs back to source data" and "recreate exact
training conditions", over the run records (nexa_core/lineage)."""

from __future__ import annotations

import json


def cmd_lineage(args, layout) -> None:
    from nexa_core.lineage import lineage
    from nexa_core.lineage.render import chain_text

    nodes = lineage(layout, args.run_id)
    if args.format == "json":
        print(json.dumps({"run_id": next(n.id for n in nodes if n.kind.endswith(" run")),
                          "chain": [n.to_dict() for n in nodes]}, indent=2, default=str))
    else:
        print(chain_text(nodes))


def cmd_reproduce(args, layout) -> None:
    from nexa_core.lineage import reproduce
    from nexa_core.lineage.render import comparison_table
    from nexa_core.storage.settings import StorageSettings, check_reachable

    storage = StorageSettings.from_env()
    check_reachable(storage)  # before any training: a missing bucket is one line, not a failed run
    result = reproduce(layout, args.run_id, storage=storage)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"reproduced {result.original} as {result.run_id} on dataset {result.dataset_version}")
    print(comparison_table(result.rows))
    differing = sum(1 for *_, d in result.rows if d != 0)
    print("identical" if result.identical else f"differs: {differing} of {len(result.rows)} metrics")


def add_parser(sub, with_config, layout_of) -> None:
    """`layout_of(args)`: the storage roots from --config if given, else the environment (cli/main.py)."""
    p = with_config(sub.add_parser("lineage", help="the chain from a model back to its raw data"), required=False)
    p.add_argument("run_id", nargs="?", help="the run to trace (default: the deployed model)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(fn=lambda args: cmd_lineage(args, layout_of(args)))
    p = with_config(sub.add_parser("reproduce", help="train a recorded run again on its dataset version and compare "
                                                     "its metrics"), required=False)
    p.add_argument("run_id")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(fn=lambda args: cmd_reproduce(args, layout_of(args)))
