"""One node's torchrun agent, which also reports how its workers failed.

`python -m nexa_core.training.agent REPORT <torchrun arguments>` runs torchrun (torch.distributed.run) in this
process. When workers fail past `--max-restarts`, torchrun raises ChildFailedError with each failed rank's exit
code or signal and the message the worker's error file holds (workers run under `record`, so an exception's
type and text are in it); this writes them to REPORT as JSON, so the launcher can name every failed rank of every
node in one line, and exits 1.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path


def failures_of(err) -> list[dict]:
    rows = []
    # Causes first: a worker the agent stopped (SIGTERM) after another failed is a victim; then by time (seconds).
    for rank, failure in sorted(err.failures.items(), key=lambda item: (_stopped(item[1]), item[1].timestamp, item[0])):
        message = failure.message
        if isinstance(message, dict):  # an error file written by `record`: {"message": "...", "extraInfo": {...}}
            message = message.get("message", "")
        rows.append({"rank": rank, "local_rank": failure.local_rank, "pid": failure.pid,
                     "exitcode": failure.exitcode,
                     "signal": failure.signal_name() if failure.exitcode < 0 else None,
                     "message": str(message or "")[-2000:], "timestamp": failure.timestamp,
                     "stopped": _stopped(failure)})
    return rows


def _stopped(failure) -> bool:
    """Ended by SIGTERM: how torchrun's agent stops the other workers once one has failed."""
    return failure.exitcode < 0 and failure.signal_name() == "SIGTERM"


def main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    report, args = Path(argv[0]), argv[1:]
    node_rank = int(report.stem.rsplit("-", 1)[-1]) if report.stem.rsplit("-", 1)[-1].isdigit() else None
    try:
        run(parse_args(args))
    except ChildFailedError as err:
        report.parent.mkdir(parents=True, exist_ok=True)
        data = {"node_rank": node_rank, "host": socket.gethostname(), "agent_pid": os.getpid(),
                "failures": failures_of(err)}
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(report)
        for f in data["failures"]:
            print(f"[nexa] rank {f['rank']} (local rank {f['local_rank']}) failed: "
                  f"{f['signal'] or 'exit code ' + str(f['exitcode'])} {f['message'][-300:]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
