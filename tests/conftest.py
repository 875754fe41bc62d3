"""Shared fixtures: a tiny model and data built in code, and a recipe whose storage lives in tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny import make_tiny_bert, write_reviews_csv

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: fail fast instead of retrying the network
# MLflow tracking defaults to on (an embedded store per storage root: ~3 s of schema set-up each); the tracking tests
# switch it on explicitly (tests/test_tracking*.py), the others leave it off through its CI switch.
os.environ.setdefault("NEXA_MLFLOW", "off")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    return write_reviews_csv(tmp_path_factory.mktemp("tiny_data") / "reviews.csv")


def tiny_recipe(model: Path, csv: Path, root: Path, **training) -> dict:
    """A recipe that trains the tiny model to >0.8 accuracy in a few seconds on CPU."""
    return {
        "name": "tiny",
        "data": {"path": str(csv), "text_column": "review", "label_column": "sentiment"},
        "model": {"name_or_path": str(model), "max_length": 32},
        "training": {"epochs": 3, "batch_size": 16, "logging_steps": 2, "optimizer": {"lr": 0.003},
                     "checkpoint": {"every_steps": 5, "keep": 1}, **training},
        "evaluation": {"thresholds": {"accuracy": 0.8}},
        "storage": {"scratch": str(root / "scratch"), "durable": str(root / "durable"), "shared": str(root / "shared")},
    }


@pytest.fixture
def recipe(tiny_model, tiny_csv, tmp_path) -> dict:
    return tiny_recipe(tiny_model, tiny_csv, tmp_path)
