"""A loopback TCP proxy that resets connections, to test retries on dropped uploads.

    python tests/reset_proxy.py --upstream-port 5000 --resets 3 --after-bytes 262144

Listens on a free 127.0.0.1 port (or --port) and forwards each client connection to the upstream. A
connection that has sent `--after-bytes` bytes towards the upstream is reset (SO_LINGER 0, then close:
the client sees ECONNRESET) while the reset budget lasts: the first `--resets` connections that get that
far are reset, later ones behave (`--resets -1`: every one is reset). Small requests (HEAD, list, a
completion record) pass; a large body crosses the threshold. Prints `listening 127.0.0.1:<port>` once
ready and `reset <n> conn=<i> bytes=<k>` for each reset, flushed, so a test can read both from its log.
The tests start it as a subprocess in its own process group and kill that group when done.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading

_BUF = 64 * 1024


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class ResetProxy:
    def __init__(self, upstream: tuple[str, int], resets: int, after_bytes: int, port: int = 0):
        self.upstream = upstream
        self.resets_left = resets  # < 0: unlimited
        self.after_bytes = after_bytes
        self.lock = threading.Lock()
        self.done_resets = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]

    def _take_reset(self) -> int | None:
        with self.lock:
            if self.resets_left == 0:
                return None
            if self.resets_left > 0:
                self.resets_left -= 1
            self.done_resets += 1
            return self.done_resets

    def serve_forever(self) -> None:
        index = 0
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self._handle, args=(client, index), daemon=True).start()
            index += 1

    def _handle(self, client: socket.socket, index: int) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return

        def backward() -> None:  # upstream -> client
            try:
                while data := upstream.recv(_BUF):
                    client.sendall(data)
                client.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=backward, daemon=True).start()
        sent = 0
        try:
            while data := client.recv(_BUF):
                if sent + len(data) >= self.after_bytes and self.resets_left != 0:
                    number = self._take_reset()
                    if number is not None:
                        upstream.sendall(data[: max(0, self.after_bytes - sent)])
                        sent = self.after_bytes
                        print(f"reset {number} conn={index} bytes={sent}", flush=True)
                        _reset(client)
                        _reset(upstream)
                        return
                upstream.sendall(data)
                sent += len(data)
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            client.close()
            upstream.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--resets", type=int, default=3, help="connections to reset; -1: all")
    parser.add_argument("--after-bytes", type=int, default=256 * 1024)
    parser.add_argument("--port", type=int, default=0, help="listen port (0: a free one)")
    args = parser.parse_args(argv)
    proxy = ResetProxy((args.upstream_host, args.upstream_port), args.resets, args.after_bytes, args.port)
    print(f"listening 127.0.0.1:{proxy.port}", flush=True)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
