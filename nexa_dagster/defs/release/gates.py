"""The blocking evaluation gate of each model line: a report below evaluation.thresholds is not released."""

from collections.abc import Iterator

import dagster as dg

from nexa_core.evaluation.report import EvaluationReport
from nexa_core.release.gates import gate_reason
from nexa_core.release.steps import run_thresholds
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.release.lines import ModelLine
from nexa_dagster.failures import refusal, refusals_as_failures
from nexa_dagster.metadata import numbers
from nexa_dagster.resources import NexaRecipe


def threshold_check(line: ModelLine) -> dg.AssetChecksDefinition:
    """A blocking check: the report's test metrics meet evaluation.thresholds, else no package or deploy."""

    # A partitioned report is checked per partition, in the same run as the partition it gates.
    @dg.asset_check(asset=line.report, name="meets_thresholds", blocking=True,
                    partitions_def=TEACHER_INPUTS if line.partitioned else None,
                    description="Test metrics meet evaluation.thresholds; a failing model is not packaged or deployed.")
    @refusals_as_failures
    def meets_thresholds(nexa: NexaRecipe, report: EvaluationReport) -> Iterator[dg.AssetCheckResult]:
        # The run's own config snapshot, as `nexa deploy` reads it: one source of truth for thresholds.
        thresholds = run_thresholds(nexa.layout(), report.run_id)
        reason = gate_reason(report.values, thresholds)
        met = ", ".join(f"{name} {report.values[name]:.3f} >= {minimum:.3f}" for name, minimum in sorted(thresholds.items())) \
            if reason is None else ""
        # The reason leads: the check's description and its first metadata row are what the UI shows first.
        yield dg.AssetCheckResult(
            passed=reason is None,
            severity=dg.AssetCheckSeverity.ERROR,
            description=reason or f"meets evaluation.thresholds: {met or 'none set'}",
            metadata={"reason": reason or "passed", "thresholds": dg.MetadataValue.json(thresholds),
                      **numbers(report.scores)},
        )
        if reason:
            # Dagster's own failure for a blocking check names only the check ("1 blocking asset check failed");
            # failing the step with the reason makes the run's failure say it too.
            raise refusal(reason)

    return meets_thresholds


