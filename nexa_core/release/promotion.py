"""Champion/challenger: deploy a new model only if it beats the deployed one on the same test split.

The champion is whatever `deploy/current_model` serves. It is re-evaluated on the challenger's test split
(its own evaluation was on older data), so both numbers measure the same rows. The decision uses
`evaluation.promotion`: `metric` (accuracy, macro_f1: higher is better; loss: lower is better) and
`min_improvement` (the challenger must be better by strictly more than this). A champion that cannot be
scored on this split (different labels) is never replaced automatically: `nexa deploy <run_id> --force` does it.
Every model line is gated by default (`evaluation.promotion.scope`: "all"; "drops" gates only drop-flow
students, "none" nothing); a model let through without winning has the reason recorded in the deploy history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


def is_gated(cfg: NexaConfig, inputs_version: Optional[str] = None) -> bool:
    """Must this model beat the champion to be deployed? Per evaluation.promotion.scope: "all" every model,
    "drops" only students of a drop input set (`inputs_version` drops-<version>), "none" none."""
    scope = cfg.evaluation.promotion.scope
    return scope == "all" or (scope == "drops" and inputs_version is not None and is_drop_inputs(inputs_version))


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
                                  f"deploy by hand with `nexa deploy {challenger_run_id} --force` if intended"}
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


def tested_on(layout: Layout, run_id: str) -> tuple[Path, dict]:
    """The prepared dataset a run was tested on, and its test report (metrics.json)."""
    from nexa_core.training.record import read_record

    metrics_path = layout.run_dir(run_id) / "metrics.json"
    report = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    version = report.get("dataset_version") or (read_record(layout.run_dir(run_id)) or {}).get("dataset_version")
    dataset_dir = layout.datasets_dir / str(version)
    if not version or not (dataset_dir / "test.parquet").exists():  # a drop version stores it as a folder
        raise NexaError(f"cannot compare run {run_id} with the deployed champion: its test split "
                        f"({dataset_dir if version else 'dataset_version in ' + str(metrics_path)}) is not here; "
                        f"restore it (`nexa prepare` with the run's recipe), or pass --force to deploy without comparing")
    return dataset_dir, report


def decision_against(settings: Callable[[], NexaConfig], layout: Layout, run_id: str,
                     current: Optional[str]) -> Optional[dict]:
    """The champion/challenger decision of `run_id` against `current` (the deployed run id): the one recorded
    if it was made against that champion (a student's, at evaluation), else a new one made now on the run's
    own test split with the recipe `settings()` returns. None when there is no other champion to beat."""
    if current is None or current == run_id:
        return None
    recorded = read_decision(layout, run_id)
    if recorded and recorded.get("champion_run_id") == current:
        return recorded
    metrics_path = layout.run_dir(run_id) / "metrics.json"
    if metrics_path.is_file() and "agreement" in json.loads(metrics_path.read_text()):
        return None  # a causal LM student: judged by agreement with its teacher (thresholds), not by a classifier's score
    dataset_dir, report = tested_on(layout, run_id)
    cfg = settings()
    gated = recorded["gated"] if recorded else is_gated(cfg)  # a student keeps its input set's gating
    return champion_vs_challenger(cfg, layout, dataset_dir, report, run_id, gated=gated)


def kept_champion(decision: dict) -> str:
    """One line for a challenger that did not win: which champion stays, and by which numbers."""
    champion, metric = decision["champion_run_id"], decision["metric"]
    if decision.get("champion_value") is None:
        return f"kept champion {champion}: {decision['reason']}"
    direction = "lower" if metric == "loss" else "higher"
    return (f"kept champion {champion} ({metric} {decision['champion_value']:.3f} vs {decision['challenger_value']:.3f} "
            f"for {decision['challenger_run_id']} on the same test split; a challenger must be {direction} by more "
            f"than {decision['min_improvement']})")
