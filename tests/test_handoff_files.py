"""Hand-off objects carry the files they point at (nexa_core/storage/handoff.py): two "machines" with storage roots
of their own and no shared disk, a store between them. What a step's output points at arrives on the next machine,
verified, with the object's paths moved under that machine's roots; files that are already there are not fetched;
damaged copies are replaced; collections and paths outside the storage tiers are never shipped whole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from nexa_core.common.errors import NexaError
from nexa_core.common.layout import Layout
from nexa_core.data.dataset import PreparedDataset
from nexa_core.evaluation.report import EvaluationReport
from nexa_core.storage import LocalStore
from nexa_core.storage.handoff import pointed_files, receive_paths, ship, unwrap
from nexa_core.training.handoff import TrainedModel

RUN = "tiny_20261130_120000"


def _machine(root: Path) -> Layout:
    layout = Layout(root / "scratch", root / "durable", root / "shared")
    for tier in (layout.scratch, layout.durable, layout.shared):
        tier.mkdir(parents=True)
    return layout


@pytest.fixture
def producer(tmp_path) -> tuple[Layout, TrainedModel]:
    """A trained model as the GPU worker leaves it: the dataset version, the run folder, a checkpoint in scratch."""
    layout = _machine(tmp_path / "gpu-node")
    version = layout.datasets_dir / "v-abc"
    version.mkdir(parents=True)
    (version / "train.parquet").write_bytes(b"train rows" * 100)
    (version / "test.parquet").write_bytes(b"test rows")
    run = layout.run_dir(RUN)
    (run / "final").mkdir(parents=True)
    (run / "final" / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (run / "run.json").write_text(json.dumps({"status": "complete"}))
    (run / "train_log.jsonl").write_text("{}\n")
    (run / ".lock").write_text("")  # a lock file is the worker's own business
    checkpoint = layout.checkpoints_dir(RUN) / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "optimizer.pt").write_bytes(b"o" * 1000)
    dataset = PreparedDataset("v-abc", version, ["neg", "pos"], {"train": 10, "test": 2}, {}, "csv", 12)
    model = TrainedModel(RUN, run / "final", dataset, {"train_loss": 0.5}, 4, best_checkpoint=str(checkpoint),
                         log_path=str(run / "train_log.jsonl"))
    return layout, model


def test_a_trained_model_arrives_whole_under_the_receivers_roots(producer, tmp_path):
    layout, model = producer
    store = LocalStore(tmp_path / "store")
    shipment = ship(store, model, layout)
    keys = sorted(f.key for f in shipment.files)
    assert keys == ["durable/runs/tiny_20261130_120000/final/model.safetensors",
                    "durable/runs/tiny_20261130_120000/run.json",
                    "durable/runs/tiny_20261130_120000/train_log.jsonl",
                    "scratch/runs/tiny_20261130_120000/checkpoints/checkpoint-4/optimizer.pt",
                    "shared/data/processed/training/v-abc/test.parquet",
                    "shared/data/processed/training/v-abc/train.parquet"]

    cpu = _machine(tmp_path / "cpu-node")
    received, stats = unwrap(store, shipment, cpu)
    assert stats == {"fetched": 6, "present": 0}
    assert received.final_dir == cpu.run_dir(RUN) / "final" and received.run_dir == cpu.run_dir(RUN)
    assert received.dataset.path == cpu.datasets_dir / "v-abc"
    assert received.log_path == str(cpu.run_dir(RUN) / "train_log.jsonl")
    assert received.best_checkpoint == str(cpu.checkpoints_dir(RUN) / "checkpoint-4")
    assert (received.final_dir / "model.safetensors").read_bytes() == (model.final_dir / "model.safetensors").read_bytes()
    assert (received.dataset.path / "train.parquet").read_bytes() == b"train rows" * 100
    assert not (cpu.run_dir(RUN) / ".lock").exists()
    assert (received.train_metrics, received.global_step) == (model.train_metrics, model.global_step)

    # The next hand-off of the same files costs no download; a copy damaged here is replaced.
    assert unwrap(store, shipment, cpu)[1] == {"fetched": 0, "present": 6}
    (received.final_dir / "model.safetensors").write_bytes(b"truncated")
    assert unwrap(store, shipment, cpu)[1] == {"fetched": 1, "present": 5}
    assert (received.final_dir / "model.safetensors").read_bytes() == bytes(range(256)) * 64


def test_a_report_brings_its_run_folder_and_files_added_later_travel_too(producer, tmp_path):
    """The evaluation worker adds metrics.json to the run folder; the manifest worker gets the folder with it."""
    gpu, model = producer
    store = LocalStore(tmp_path / "store")
    cpu = _machine(tmp_path / "cpu-node")
    received, _ = unwrap(store, ship(store, model, gpu), cpu)
    (received.run_dir / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    report = EvaluationReport(RUN, {"accuracy": 0.9, "metrics_path": str(received.run_dir / "metrics.json")})
    third = _machine(tmp_path / "release-node")
    got, stats = unwrap(store, ship(store, report, cpu), third)
    assert got.metrics_path == third.run_dir(RUN) / "metrics.json"
    assert json.loads(got.metrics_path.read_text()) == {"accuracy": 0.9}
    assert (third.run_dir(RUN) / "final" / "model.safetensors").is_file()  # the whole run folder, by run id
    # The GPU worker's upload was not undone by the CPU worker's: files are added, never mirrored away.
    assert (tmp_path / "store" / "durable" / "runs" / RUN / "final" / "model.safetensors").is_file()


def test_collections_and_paths_outside_the_tiers_are_not_shipped(producer, tmp_path):
    layout, _ = producer
    pinned = tmp_path / "pinned-model"
    pinned.mkdir()
    (pinned / "config.json").write_text("{}")

    @dataclass(frozen=True)
    class Plan:
        storage: dict
        teacher: Path
        mlflow: dict

    plan = Plan({"durable": str(layout.durable), "shared": str(layout.shared), "runs": str(layout.runs_dir)},
                pinned, {"run_id": "4f1c0ffee"})  # an MLflow run id is no NexaCompute run
    files, outside = pointed_files(plan, layout)
    assert files == {} and outside == [str(pinned)]
    store = LocalStore(tmp_path / "store")
    got, stats = unwrap(store, ship(store, plan, layout), _machine(tmp_path / "other"))
    assert got.teacher == pinned and stats == {"fetched": 0, "present": 0}


def test_a_tampered_stored_file_is_refused_and_nothing_is_left(producer, tmp_path):
    layout, model = producer
    store = LocalStore(tmp_path / "store")
    shipment = ship(store, model, layout)
    (tmp_path / "store" / "durable" / "runs" / RUN / "run.json").write_text("{}")
    cpu = _machine(tmp_path / "cpu-node")
    with pytest.raises(NexaError, match="does not match its completion record"):
        unwrap(store, shipment, cpu)
    assert not (cpu.run_dir(RUN) / "run.json").exists()
    assert not [p for p in cpu.durable.rglob("*") if p.is_file() and ".nexa-tmp" in p.name]


def test_a_run_found_by_id_is_fetched_from_what_was_handed_over(producer, tmp_path):
    """A study's best trial is looked up in the study database, not received as an input: its run folder and
    dataset are fetched by folder from what the trial's worker handed over."""
    layout, model = producer
    store = LocalStore(tmp_path / "store")
    ship(store, {"run_id": RUN, "number": 3}, layout)  # a trial's outcome: the run folder, by id
    ship(store, model.dataset, layout)
    other = _machine(tmp_path / "release-node")
    stats = receive_paths(store, [other.run_dir(RUN), other.datasets_dir / "v-abc", other.runs_dir], other)
    assert stats == {"fetched": 5, "present": 0}
    assert (other.run_dir(RUN) / "final" / "model.safetensors").read_bytes() == bytes(range(256)) * 64
    assert (other.datasets_dir / "v-abc" / "test.parquet").read_bytes() == b"test rows"
    assert receive_paths(store, [other.run_dir(RUN)], other) == {"fetched": 0, "present": 3}
