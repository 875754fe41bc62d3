"""Fine-tuning of Hugging Face classifiers: the trainer, its callbacks and the run record."""

from nexa_core.training.run import TrainResult, train

__all__ = ["TrainResult", "train"]
