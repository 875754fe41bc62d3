"""How many GPUs this process may use, without importing torch: `nproc_per_node: auto` is resolved where torch is
not loaded yet (the launcher, the run's work key), and torch's CUDA start-up costs seconds."""

from __future__ import annotations

import os


def visible_gpu_count() -> int:
    """CUDA_VISIBLE_DEVICES when set (the GPUs a scheduler handed this process), else every GPU NVML sees; 0 without
    a driver."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        # CUDA stops at the first invalid entry ("-1" or "" hide every GPU).
        count = 0
        for entry in listed.split(","):
            if not entry.strip() or entry.strip().startswith("-"):
                break
            count += 1
        return count
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver: no GPU to count
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()
