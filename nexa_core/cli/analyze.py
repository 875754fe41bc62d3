"""`nexa analyze`: the runbooks' analyze_runs.py. A leaderboard over every run manifest, joined with each run's
record, training log, telemetry and deploy state; sorted, filtered, printed or written, with plots.

    nexa analyze                                        # table of runs, then averages by model and dataset
    nexa analyze --sort=-cost_usd --filter line=student --filter accuracy>=0.8
    nexa analyze --format parquet --output runs.parquet --plots plots/
"""

from __future__ import annotations

import sys

from nexa_core.analysis.export import FORMATS  # no pandas at import: `nexa --help` stays fast
from nexa_core.common.errors import NexaError


def cmd_analyze(args, layout) -> None:
    from nexa_core.analysis.export import report_text, write_frame, write_text
    from nexa_core.analysis.leaderboard import build_leaderboard, group_summary
    from nexa_core.analysis.plots import write_plots
    from nexa_core.analysis.query import filter_runs, sort_runs

    fmt = args.format or _format_of(args.output)
    board = build_leaderboard(layout)
    for warning in board.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Sort and filter are checked even with no runs, so a typo is caught before the first manifest exists.
    runs = sort_runs(filter_runs(board.runs, args.filter), args.sort, args.ascending)
    if args.plots and args.metric not in runs.columns:
        raise NexaError(f"--metric: no column {args.metric!r}; available: {', '.join(runs.columns)}")
    groups = group_summary(runs)
    if runs.empty:
        reason = "no run matches the filters" if not board.runs.empty else \
            f"no run manifests in {layout.manifests_dir} (train a run with `nexa train`)"
        print(f"nothing to analyze: {reason}", file=sys.stderr)
        return
    frame = groups if args.groups else runs
    if fmt == "table":
        text = report_text(runs, groups, runs_too=not args.groups)
        if args.output:
            print(write_text(args.output, text))
        else:
            sys.stdout.write(text)
    else:
        written = write_frame(frame, fmt, args.output)
        if written:
            print(written)
    if args.plots:
        for path in write_plots(runs, args.plots, args.metric):
            print(path)


def _format_of(output: str | None) -> str:
    """Without --format, the output file's suffix says it (runs.parquet is Parquet); else the text table."""
    suffix = output.rsplit(".", 1)[-1].lower() if output and "." in output else ""
    return suffix if suffix in FORMATS[1:] else "table"


def add_parser(sub, with_config, layout_of) -> None:
    p = with_config(sub.add_parser("analyze", help="leaderboard of every run: metrics, loss, runtime, cost, deployed"),
                    required=False)
    p.add_argument("--sort", help="column(s) to sort by, best first (loss/cost/runtime ascending, scores descending); "
                                  "-COL descending, +COL ascending, comma-separated for several; default accuracy")
    p.add_argument("--ascending", action="store_true", help="sort keys without a sign ascending (lowest first)")
    p.add_argument("--filter", action="append", default=[], metavar="COL OP VALUE",
                   help="keep rows where COL =, !=, >=, <=, >, < VALUE, or ~ contains it (repeatable: all must match)")
    p.add_argument("--format", choices=FORMATS,
                   help="table, csv, json or parquet (default: from --output's suffix, else table)")
    p.add_argument("--output", metavar="PATH", help="write here (atomically) instead of stdout; required for parquet")
    p.add_argument("--groups", action="store_true", help="output the summary by model and dataset instead of the runs")
    p.add_argument("--plots", metavar="DIR", help="write metric_over_time.png and cost_vs_accuracy.png here")
    p.add_argument("--metric", default="accuracy", help="the metric the plots show (default accuracy)")
    p.set_defaults(fn=lambda args: cmd_analyze(args, layout_of(args)))
