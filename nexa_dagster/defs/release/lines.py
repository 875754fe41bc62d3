"""The model lines that go through the release chain: the fine-tuned classifier, the distilled student (one
release per teacher-input partition) and the best trial of a hyperparameter study. All are built by the same
factory (`assets.py`); each line's `promotion` step feeds the one deployment asset, `current_model` (`deployment.py`)."""

from dataclasses import dataclass

RELEASE_STEPS = ("run_manifest", "model_package", "promotion", "run_mirror")


@dataclass(frozen=True)
class ModelLine:
    name: str  # "trained" or "student": recorded with each deploy, shown on current_model
    model: str  # the asset whose output is a trained model (run id, dataset, train metrics)
    report: str  # the asset whose output is that model's evaluation report
    prefix: str = ""  # prepended to the release asset names
    partitioned: bool = False  # one release per teacher-input partition

    @property
    def release_assets(self) -> list[str]:
        return [f"{self.prefix}{step}" for step in RELEASE_STEPS]

    @property
    def promotion(self) -> str:
        return f"{self.prefix}promotion"


TRAINED_LINE = ModelLine("trained", "trained_model", "evaluation_report")
STUDENT_LINE = ModelLine("student", "student_model", "student_evaluation", prefix="student_", partitioned=True)
TUNED_LINE = ModelLine("tuned", "tuned_model", "tuned_evaluation", prefix="tuned_")
LINES = (TRAINED_LINE, STUDENT_LINE, TUNED_LINE)
