"""Champion/challenger for students: the deployed model is re-scored on the student's test split and the decision
is recorded (metadata and `promotion.json`). `student_promotion` acts on it (deploys a winner, keeps the champion
otherwise); the check `beats_champion` shows it on the evaluation, as a warning when the student lost: losing is an
expected outcome, not a failure of the run."""

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


@dg.asset_check(asset="student_evaluation", blocking=False, partitions_def=TEACHER_INPUTS,
                description="The student beats the deployed champion on the same test split by "
                            "evaluation.promotion.metric and min_improvement; if not, student_promotion keeps the "
                            "champion (unless evaluation.promotion.scope does not gate it).")
@refusals_as_failures
def beats_champion(nexa: NexaRecipe, student_evaluation) -> dg.AssetCheckResult:
    from nexa_core.release.promotion import kept_champion

    decision = student_evaluation.promotion
    if decision is None:  # causal LM students are judged by agreement with the teacher (meets_thresholds)
        return dg.AssetCheckResult(passed=True, description="no champion comparison: not a classifier student")
    gated = decision["gated"]
    lost = kept_champion(decision) if gated else \
        f"{decision['reason']}; not gated (evaluation.promotion.scope={nexa.core().evaluation.promotion.scope}), so it is still deployed"
    return dg.AssetCheckResult(passed=bool(decision["promote"]), severity=dg.AssetCheckSeverity.WARN,
                               description=decision["reason"] if decision["promote"] else lost,
                               metadata=to_metadata({
                                   **{k: decision.get(k) for k in ("challenger_value", "champion_value", "improvement")},
                                   "gated": gated, "champion_run_id": decision["champion_run_id"],
                                   "challenger_run_id": decision["challenger_run_id"], "comparison": decision}))
