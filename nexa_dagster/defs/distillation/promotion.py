"""Champion/challenger for students: the deployed model is re-scored on the student's test split, the decision
is recorded (metadata and `promotion.json`), and the blocking check `beats_champion` stops the release of a
gated student that does not beat it. Drop-flow students are always gated (evaluation.promotion.scope)."""

import dagster as dg

from nexa_dagster.defs.distillation.partitions import TEACHER_INPUTS
from nexa_dagster.failures import refusals_as_failures
from nexa_dagster.metadata import to_metadata
from nexa_dagster.resources import NexaRecipe


def decide_promotion(context: dg.AssetExecutionContext, cfg, layout, report, student) -> dict:
    from nexa_core.release.promotion import decide_for_student

    decision = decide_for_student(cfg, layout, student, report, context.partition_key)
    note = "" if decision["gated"] else " (recorded only: this input set is not gated, see evaluation.promotion.scope)"
    context.log.info(f"champion/challenger: {decision['reason']}{note}")
    return decision


@dg.asset_check(asset="student_evaluation", blocking=True, partitions_def=TEACHER_INPUTS,
                description="A gated student (every drop-flow student) beats the deployed champion on the same test "
                            "split by evaluation.promotion.metric and min_improvement; else it is not released.")
@refusals_as_failures
def beats_champion(nexa: NexaRecipe, student_evaluation) -> dg.AssetCheckResult:
    decision = student_evaluation.promotion
    if decision is None:  # causal LM students are judged by agreement with the teacher (meets_thresholds)
        return dg.AssetCheckResult(passed=True, description="no champion comparison: not a classifier student")
    gated = decision["gated"]
    # Only an ERROR failure blocks the release; an ungated student that lost is flagged with a warning.
    severity = dg.AssetCheckSeverity.ERROR if gated else dg.AssetCheckSeverity.WARN
    reason = decision["reason"] if gated else f"{decision['reason']}; not gated (evaluation.promotion.scope=" \
                                              f"{nexa.core().evaluation.promotion.scope}), so it is still released"
    return dg.AssetCheckResult(passed=bool(decision["promote"]), severity=severity, description=reason,
                               metadata=to_metadata({
                                   **{k: decision.get(k) for k in ("challenger_value", "champion_value", "improvement")},
                                   "gated": gated, "champion_run_id": decision["champion_run_id"],
                                   "challenger_run_id": decision["challenger_run_id"], "comparison": decision}))
