"""`make dev`: exec a command (`dagster dev ...`) with SIGINT and SIGTERM at their defaults, so Ctrl-C or SIGTERM
to the process group stops dagster dev, its webserver, daemon and code server, however make was started.

A signal that a parent ignores stays ignored across fork and exec, and Python installs no KeyboardInterrupt
handler for a SIGINT it inherited as ignored. A non-interactive shell starts its background jobs so
(`make dev &` from a script or an agent's shell), and `dagster dev` points SIGTERM at SIGINT's handler
(dagster._utils.interrupts.setup_interrupt_handlers): it then ignored both, and only SIGKILL to its group stopped
it. With the defaults back before exec, dagster dev's own shutdown runs: it stops its children and exits.

    python -m nexa_dagster.dev .venv/bin/dagster dev -h 127.0.0.1 -p 3000
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m nexa_dagster.dev <program> [args...], e.g. .venv/bin/dagster dev -p 3000")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
