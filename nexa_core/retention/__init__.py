"""Retention: the runbook's `cleanup --days 7 --prune-size +2G`, which never loses the best model.

    plan = plan_cleanup(layout, days=7, prune_size=parse_size("+2G"))
    print(format_plan(plan))          # the dry run: what would go and why, what stays and why
    result = apply_plan(plan)         # or apply_plan(plan, archive=upload_to_s3)

`--prune-size +2G` means what find's `-size +2G` means: a checkpoint (or run scratch folder) *larger
than* 2 GiB is prunable. It is a second rule beside `--days`, not a total budget: a candidate goes when
it is older than the window OR larger than the size, and nothing protected goes whatever it matches.
Packages and releases (durable) are pruned by age only. Crash leftovers (temp packages, unpack folders,
abandoned interrupted runs) are listed and removed too. See `plan_cleanup` for the protections.
"""

from nexa_core.retention.apply import apply_plan, clean_leftovers
from nexa_core.retention.model import KINDS, Candidate, Plan
from nexa_core.retention.plan import plan_cleanup
from nexa_core.retention.report import format_plan
from nexa_core.retention.size import format_size, parse_size

DAYS_HELP = ("delete checkpoints, packages and releases not modified in the last DAYS days, and the whole "
             "scratch folder of a run idle that long (never a run's best or latest --keep-latest checkpoints, "
             "a run a live process is training, the deployed or rollback release, or what a recent manifest names); "
             "an interrupted run idle that long is removed as a crash leftover, as are temp packages and unpack "
             "folders of killed processes (after an hour, whatever DAYS says)")
PRUNE_SIZE_HELP = ("also delete any checkpoint folder larger than SIZE, like find -size +SIZE, whatever its age "
                   "(same protections); e.g. +2G, 500M, 1.5G, 100K, 1024 (bytes); units are powers of 1024; "
                   "packages and releases are pruned by --days only")
KEEP_LATEST_HELP = "keep each run's N newest checkpoints (default 2), so it can resume"

__all__ = ["KINDS", "Candidate", "Plan", "apply_plan", "clean_leftovers", "format_plan", "format_size",
           "parse_size", "plan_cleanup", "DAYS_HELP", "PRUNE_SIZE_HELP", "KEEP_LATEST_HELP"]
