"""The two model lines that go through the release chain: the fine-tuned classifier and the distilled student
(one release per teacher-input partition). Both are built by the same factory (`assets.py`)."""

from dataclasses import dataclass

RELEASE_STEPS = ("run_manifest", "model_package", "deployed_model", "run_mirror")


@dataclass(frozen=True)
class ModelLine:
    model: str  # the asset whose output is a trained model (run id, dataset, train metrics)
    report: str  # the asset whose output is that model's evaluation report
    prefix: str = ""  # prepended to the release asset names
    partitioned: bool = False  # one release per teacher-input partition

    @property
    def release_assets(self) -> list[str]:
        return [f"{self.prefix}{step}" for step in RELEASE_STEPS]


TRAINED_LINE = ModelLine("trained_model", "evaluation_report")
STUDENT_LINE = ModelLine("student_model", "student_evaluation", prefix="student_", partitioned=True)
