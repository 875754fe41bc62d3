"""`nexa monitor` and `nexa summary`: the runbook's gpu_monitor.py and `orchestrate.py summary`."""

from __future__ import annotations

import json
import signal

from nexa_core.common.errors import NexaError


def cmd_monitor(args) -> None:
    from nexa_core.telemetry.monitor import run_monitor

    if args.interval <= 0:
        raise NexaError(f"--interval {args.interval}: must be a positive number of seconds, e.g. --interval 5")
    if args.count is not None and args.count < 1:
        raise NexaError(f"--count {args.count}: must be at least 1 (omit it to refresh until Ctrl-C)")
    # Ctrl-C is how the view ends: take it back even if our parent started us with SIGINT ignored (a background job
    # of a non-interactive shell), which Python would otherwise keep, leaving only SIGKILL to stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_monitor(args.interval, args.count)


def cmd_summary(args, layout) -> None:
    from nexa_core.telemetry.report import summary_lines, write_infra_report

    path, report = write_infra_report(layout)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print("\n".join(summary_lines(report)))
    print(f"written: {path}")


def add_parsers(sub, with_config, layout_of) -> None:
    p = sub.add_parser("monitor", help="live view of every GPU (CPU and memory without one); Ctrl-C exits")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes (default 5)")
    p.add_argument("--count", type=int, help="stop after this many refreshes (default: until Ctrl-C)")
    p.set_defaults(fn=cmd_monitor)
    p = with_config(sub.add_parser("summary", help="environment fingerprint -> runs/manifests/infra_report.json"),
                    required=False)
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(fn=lambda args: cmd_summary(args, layout_of(args)))
