"""Fine-tuning of Hugging Face classifiers: the trainer, its callbacks and the run record.

`train` and `TrainResult` load lazily so that light modules here (record, metrics, precision) can be
imported without pulling in transformers.
"""

from typing import Any

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nexa_core.training import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
