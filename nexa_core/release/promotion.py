"""Champion/challenger: deploy a new model only if it beats the deployed one on the same test split.

The champion is whatever `deploy/current_model` serves. It is re-evaluated on the challenger's test split
(its own evaluation was on older data), so both numbers measure the same rows. The decision uses
`evaluation.promotion`: `metric` (accuracy, macro_f1: higher is better; loss: lower is better) and
`min_improvement` (the challenger must be better by strictly more than this). A champion that cannot be
scored on this split (different labels) is never replaced automatically: `nexa deploy <run_id>` does it by hand.
The decision gates a student built from a data drop (input set `drops-<version>`); for other input sets it is
recorded only, unless `evaluation.promotion.scope` is "all".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from nexa_core.common.atomic import atomic_write_json
from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.config import NexaConfig, PromotionConfig
from nexa_core.data.names import is_drop_inputs

PROMOTION_FILE = "promotion.json"


def compare(challenger: dict, champion: Optional[dict], promotion: PromotionConfig) -> dict:
    """The decision for two evaluations on the same split; `champion` None means nothing is deployed."""
    metric, margin = promotion.metric, promotion.min_improvement
    value = challenger.get(metric)
    if not isinstance(value, (int, float)):
        raise NexaError(f"evaluation.promotion.metric: the challenger's report has no {metric!r}; "
                        "use accuracy, macro_f1 or loss")
    decision = {"metric": metric, "min_improvement": margin, "challenger_value": float(value)}
    if champion is None:
        return {**decision, "champion_value": None, "improvement": None, "promote": True,
                "reason": "no champion deployed"}
    best = float(champion[metric])
    improvement = best - value if metric == "loss" else value - best
    promote = improvement > margin
    verb = "beats" if promote else "does not beat"
    reason = (f"challenger {metric}={value:.4f} {verb} champion {metric}={best:.4f} "
              f"by more than {margin} (improvement {improvement:+.4f})")
    return {**decision, "champion_value": best, "improvement": improvement, "promote": promote, "reason": reason}


def is_gated(cfg: NexaConfig, inputs_version: str) -> bool:
    """Must this student beat the champion to be deployed? Drop input sets always; others if scope is "all"."""
    return cfg.evaluation.promotion.scope == "all" or is_drop_inputs(inputs_version)


def champion_vs_challenger(cfg: NexaConfig, layout: Layout, dataset_dir: Path, challenger: dict,
                           challenger_run_id: str, gated: bool = True) -> dict:
    """Score the deployed champion on the challenger's test split, decide, and write `promotion.json` beside
    the challenger's run. Returns the decision with both run ids, the dataset version, the split size and
    `gated` (False: recorded for information, deployment does not wait on it)."""
    from nexa_core.evaluation.evaluate import evaluate_model
    from nexa_core.release import deploy

    champion_id = deploy.current_release(layout)
    out_dir = layout.run_dir(challenger_run_id)
    context = {"challenger_run_id": challenger_run_id, "champion_run_id": champion_id, "split": "test",
               "dataset_version": challenger.get("dataset_version"), "num_examples": challenger.get("num_examples"),
               "gated": gated}
    if champion_id is None:
        decision = compare(challenger, None, cfg.evaluation.promotion)
    elif champion_id == challenger_run_id:
        decision = {**compare(challenger, None, cfg.evaluation.promotion), "promote": True,
                    "reason": "the challenger is already the deployed model"}
    else:
        try:
            champion = evaluate_model(deploy.current_model_path(layout), dataset_dir, out_dir / "champion_eval",
                                      batch_size=cfg.evaluation.batch_size, max_length=cfg.model.max_length,
                                      save_predictions=False, device=cfg.training.device)
        except NexaError as err:
            decision = {**compare(challenger, None, cfg.evaluation.promotion), "promote": False,
                        "reason": f"the champion {champion_id} cannot be scored on this test split ({err}); "
                                  f"deploy by hand with `nexa deploy {challenger_run_id}` if intended"}
        else:
            decision = compare(challenger, champion, cfg.evaluation.promotion)
    result = {**context, **decision}
    atomic_write_json(out_dir / PROMOTION_FILE, result)
    return result


def decide_for_student(cfg: NexaConfig, layout: Layout, student, report, inputs_version: str) -> dict:
    """The champion/challenger decision for a distilled student (`TrainedModel`, its `EvaluationReport`), as
    both `nexa distill` and the `student_evaluation` asset record it: gated for drop input sets (or scope all)."""
    return champion_vs_challenger(cfg, layout, Path(student.dataset.path), report.values, student.run_id,
                                  gated=is_gated(cfg, inputs_version))


def read_decision(layout: Layout, run_id: str) -> Optional[dict]:
    """The promotion decision recorded for a run, if it went through champion/challenger."""
    path = layout.run_dir(run_id) / PROMOTION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def promotion_refusal(layout: Layout, run_id: str, current: Optional[str]) -> Optional[str]:
    """Why a gated run may not replace `current` (the deployed run id), or None. Ungated decisions and runs
    without a decision (the fine-tuned line) are not refused here: their thresholds gate them."""
    decision = read_decision(layout, run_id)
    if not decision or not decision.get("gated", True):
        return None
    if not decision["promote"]:
        return f"{run_id} lost to the champion ({decision['reason']})"
    if decision["champion_run_id"] not in (current, run_id):
        return (f"the deployed model changed from {decision['champion_run_id']} to {current} since {run_id} was "
                "compared with it; evaluate it again against the new champion")
    return None
