"""`nexa train-node`: one node of a training run across several machines (training.distributed.nodes > 1).

Node 0 trains the run as `nexa train` does (claim, dataset, node 0's torchrun agent) and writes its spec into the
run's folder; every other node runs this with its own rank and joins the same c10d rendezvous with the spec's
settings. Each node runs the same command, so a Kubernetes Indexed Job passes JOB_COMPLETION_INDEX as the rank:

    nexa train-node --config recipe.yaml --run-id tiny_20260101_000000 --node-rank $JOB_COMPLETION_INDEX
    nexa train-node --spec $NEXA_DURABLE/runs/<run_id>/launch.json --node-rank 1   # a run node 0 started elsewhere
"""

from __future__ import annotations

from pathlib import Path

from nexa_core.common.errors import NexaError


def cmd_train_node(args) -> None:
    from nexa_core.training.torchrun import join_run, spec_path

    if args.node_rank < 0:
        raise NexaError(f"--node-rank {args.node_rank}: use 0 (the node that trains the run) or above")
    if args.spec:
        path = Path(args.spec)
    elif args.config and args.run_id:
        if args.node_rank == 0:
            from nexa_core.cli.main import cmd_train

            cmd_train(args)  # node 0 is `nexa train --run-id`: it writes the spec the other nodes wait for
            return
        from nexa_core.cli.main import _layout

        path = spec_path(_layout(args), args.run_id)
    else:
        raise NexaError("train-node: pass --spec <run folder>/launch.json, or --config and --run-id of the run")
    join_run(path, args.node_rank, args.wait)
    print(f"node {args.node_rank} of run {path.parent.name}: done", flush=True)


def add_parser(sub, with_config) -> None:
    p = with_config(sub.add_parser("train-node", help="run one node of a multi-node training run"), required=False)
    p.add_argument("--node-rank", type=int, required=True, help="0 trains the run; 1.. join it")
    p.add_argument("--spec", help="the run's launch.json (node 0 writes it into the run's folder)")
    p.add_argument("--run-id", help="the run every node joins (with --config)")
    p.add_argument("--wait", type=float, default=600.0, help="seconds to wait for node 0's spec (default 600)")
    p.set_defaults(fn=cmd_train_node)
