"""The blocking evaluation gate of each model line: a report below evaluation.thresholds is not released."""

import dagster as dg

from nexa_core.evaluation.report import EvaluationReport
from nexa_core.release.gates import gate_failures
from nexa_core.release.steps import run_thresholds
from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.defs.release.lines import ModelLine
from nexa_dagster.metadata import numbers
from nexa_dagster.resources import NexaRecipe


def threshold_check(line: ModelLine) -> dg.AssetChecksDefinition:
    """A blocking check: the report's test metrics meet evaluation.thresholds, else no package or deploy."""

    # A partitioned report is checked per partition, in the same run as the partition it gates.
    @dg.asset_check(asset=line.report, name="meets_thresholds", blocking=True,
                    partitions_def=TEACHER_INPUTS if line.partitioned else None,
                    description="Test metrics meet evaluation.thresholds; a failing model is not packaged or deployed.")
    def meets_thresholds(nexa: NexaRecipe, report: EvaluationReport) -> dg.AssetCheckResult:
        # The run's own config snapshot, as `nexa deploy` reads it: one source of truth for thresholds.
        thresholds = run_thresholds(nexa.layout(), report.run_id)
        failures = gate_failures(report.values, thresholds)
        return dg.AssetCheckResult(
            passed=not failures,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"thresholds": dg.MetadataValue.json(thresholds), "failures": dg.MetadataValue.json(failures),
                      **numbers(report.scores)},
        )

    return meets_thresholds


