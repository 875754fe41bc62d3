"""Upload throughput of our verified S3 sync against plain boto3 `upload_file`, on a local moto_server.

  ours    `S3Store.push(folder, key)` / `S3Store.push_file(file, key)` with default settings: sha256 of
          every file, files in parallel (max_files=8), parts in parallel (8 MiB parts, max_concurrency=10, as boto3),
          HEAD verification of size and sha256 metadata, completion record last
  boto3   `client.upload_file(path, bucket, key)` with default settings (TransferConfig(): 8 MiB
          threshold/parts, 10 threads per file), called file by file; no hashing, no verification

Data, generated once into a temp folder (random bytes, so nothing compresses): (a) a sharded checkpoint
folder of `--total-mb` MB in `--files` files, (b) one `--total-mb` MB file. moto_server runs on a free
127.0.0.1 port as a subprocess in its own process group and is stopped at the end; the objects of each
round are deleted before the next (moto keeps them in memory or its own temp files). Rounds alternate
the order of the contenders; the best round of each counts (other load only slows a round down); one untimed round of each on the sharded
folder warms the server up first (its first few hundred MB are markedly slower).
Both contenders and the server share this machine's cores, so the figures measure client-side
overheads and parallelism against a local server, not network bandwidth.
Run:  .venv/bin/python bench/s3_sync.py [--total-mb 500] [--files 48] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from nexa_core.storage.s3 import S3Store  # noqa: E402

BUCKET = "nexa-bench"
MiB = 1024 * 1024
DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
             "AWS_EC2_METADATA_DISABLED": "true"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if not exe:
        sys.exit("moto_server not found: pip install 'moto[server]'")
    for _ in range(3):
        port = free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, **DUMMY_ENV}, start_new_session=True)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                plain_client(endpoint).list_buckets()
                return proc, endpoint
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        stop(proc)
    sys.exit(f"moto_server did not start; see {log}")


def stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def plain_client(endpoint: str):
    """What a user writes: a client with default settings (region from the environment)."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint,
                                          config=Config(s3={"addressing_style": "path"}))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (the moto server), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 4 * MiB)
            fh.write(os.urandom(n))
            left -= n


def empty_bucket(client) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def timed(fn, moto_pid: int) -> tuple[float, float, float]:
    """(wall seconds, our process's CPU seconds, the server's CPU seconds) of fn()."""
    cpu0, srv0, t0 = time.process_time(), cpu_seconds(moto_pid), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - cpu0, cpu_seconds(moto_pid) - srv0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mb", type=float, default=500, help="size of each data set in MB (default 500)")
    parser.add_argument("--files", type=int, default=48, help="shards in the checkpoint folder (default 48)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per contender; the best counts (default 2)")
    args = parser.parse_args()
    os.environ.update(DUMMY_ENV)

    work = Path(tempfile.mkdtemp(prefix="nexa-s3-bench-"))
    proc = None
    try:
        total = int(args.total_mb * 1e6)
        shard = total // args.files
        sharded, single = work / "checkpoint", work / "single" / "weights.bin"
        t0 = time.perf_counter()
        for i in range(args.files):
            write_random(sharded / f"model-{i + 1:05d}-of-{args.files:05d}.safetensors", shard)
        write_random(single, total)
        print(f"data: {args.files} shards of {shard / MiB:.2f} MiB ({shard * args.files / 1e6:.0f} MB) and one "
              f"{total / 1e6:.0f} MB file, generated in {time.perf_counter() - t0:.1f}s; {os.cpu_count()} CPUs", flush=True)

        proc, endpoint = start_moto(work / "moto_server.log")
        client = plain_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        store = S3Store(BUCKET, "ours", endpoint_url=endpoint)

        def ours_sharded() -> None:
            result = store.push(sharded, "checkpoint")
            assert result["stats"]["uploaded"] == args.files, result["stats"]

        def boto_sharded() -> None:
            for path in sorted(sharded.iterdir()):
                client.upload_file(str(path), BUCKET, f"boto3/checkpoint/{path.name}")

        def ours_single() -> None:
            assert store.push_file(single, "single/weights.bin")["stats"]["uploaded"] == 1

        def boto_single() -> None:
            client.upload_file(str(single), BUCKET, "boto3/single/weights.bin")

        # The server runs markedly slower on its first few hundred MB (allocator, code paths): warm it up.
        for fn in (boto_sharded, ours_sharded):
            fn()
            empty_bucket(client)

        results: dict[str, list[tuple[float, float, float]]] = {}
        for case, contenders in (("sharded", (("ours", ours_sharded), ("boto3", boto_sharded))),
                                 ("single file", (("ours", ours_single), ("boto3", boto_single)))):
            for r in range(args.repeats):
                order = contenders if r % 2 == 0 else contenders[::-1]
                for name, fn in order:
                    wall, cpu, srv = timed(fn, proc.pid)
                    empty_bucket(client)
                    results.setdefault(f"{case}/{name}", []).append((wall, cpu, srv))
                    print(f"  {case:11s} {name:5s} round {r + 1}: {wall:6.2f}s wall, client CPU {cpu:6.2f}s, "
                          f"server CPU {srv:6.2f}s", flush=True)

        for case, target in (("sharded", 1.5), ("single file", 0.9)):
            ours = min(w for w, _, _ in results[f"{case}/ours"])
            base = min(w for w, _, _ in results[f"{case}/boto3"])
            ratio = base / ours
            verdict = "met" if ratio >= target else "NOT met"
            print(f"{case}: ours {ours:.2f}s vs boto3 {base:.2f}s = {ratio:.2f}x (target >= {target}x, {verdict})")
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
