"""`gpu_lease`: steps admitted together by the `gpu` pool on a multi-GPU node train on different GPUs. The GPU
count is given (this machine has none), which is all the lease reads of the hardware."""

from __future__ import annotations

import threading
import time

from nexa_core.config import validate_config
from nexa_core.training import gpus
from nexa_core.training.gpus import gpu_lease


def _cfg(device: str = "auto"):
    return validate_config({"data": {"path": "x.csv"}, "training": {"device": device}})


def test_steps_at_once_get_different_gpus_and_a_third_waits_for_one(tmp_path, monkeypatch):
    monkeypatch.setattr(gpus, "POLL_S", 0.05)
    got: list[str] = []

    def third():
        with gpu_lease(_cfg(), tmp_path, count=2) as cfg:
            got.append(cfg.training.device)

    with gpu_lease(_cfg(), tmp_path, count=2) as first:
        with gpu_lease(_cfg("cuda"), tmp_path, count=2) as second:
            assert (first.training.device, second.training.device) == ("cuda:0", "cuda:1")
            waiter = threading.Thread(target=third)
            waiter.start()
            time.sleep(0.5)
            assert got == []  # both GPUs leased: it waits rather than share one
        waiter.join(timeout=10)
        assert got == ["cuda:1"]  # the GPU the second step gave back, while the first still holds cuda:0
    assert not list(tmp_path.iterdir())  # every lease released: no lock file left behind


def test_a_pinned_device_or_a_single_gpu_is_left_alone(tmp_path):
    with gpu_lease(_cfg("cuda:1"), tmp_path, count=4) as pinned, gpu_lease(_cfg("cpu"), tmp_path, count=4) as cpu:
        assert (pinned.training.device, cpu.training.device) == ("cuda:1", "cpu")
    with gpu_lease(_cfg(), tmp_path, count=1) as one, gpu_lease(_cfg(), tmp_path, count=0) as none:
        assert (one.training.device, none.training.device) == ("auto", "auto")
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_the_trainer_resource_leases_for_every_gpu_asset(tmp_path, monkeypatch):
    """What trained_model, teacher_model, teacher_outputs and student_model train under: on a 2-GPU node, two of
    them at once land on different GPUs; a device the resource pins is kept."""
    from nexa_core.common.layout import Layout
    from nexa_dagster.resources import GPUTrainerResource

    monkeypatch.setattr(gpus, "visible_gpus", lambda: 2)
    layout = Layout(tmp_path / "scratch", tmp_path / "durable", tmp_path / "shared")
    auto = GPUTrainerResource()
    with auto.gpu(_cfg(), layout) as first, auto.gpu(_cfg(), layout) as second:
        assert (first.training.device, second.training.device) == ("cuda:0", "cuda:1")
    with GPUTrainerResource(device="cuda:1").gpu(_cfg(), layout) as pinned:
        assert pinned.training.device == "cuda:1"
