"""A torchrun worker entry whose rank 1 fails at once (tests/test_ddp_elastic.py): what a failed rank reports."""

from __future__ import annotations

import os
import sys
import time


def main(spec_path: str) -> None:
    if os.environ["RANK"] == "1":
        raise ValueError("rank one broke on purpose")
    time.sleep(60)  # rank 0 waits: the agent stops it when rank 1 fails


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    record(main)(sys.argv[1])
