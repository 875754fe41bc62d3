"""Cost of processing one new data drop with 1 vs 30 earlier drops already materialized (target ratio <= 1.2).

"Processing" is what the drop flow runs for a drop: `ingest_drop` (read, clean, de-duplicate against every earlier
text through the hash index, assign splits) and `build_version` (the new content-hashed dataset version that
DataQuery and the trainer read). Two stores are set up first - one with 1 earlier drop, one with 30, each drop
materialized into its own version as the automation would - then `--rounds` new drops are processed in both,
alternating which store goes first each round so machine noise cancels. The median of each is reported, with CPU
time beside wall time, and for contrast one full re-prepare (`prepare_dataset`) of all 31 drops' rows.
Run:  .venv/bin/python bench/incremental.py [--rows 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import pandas as pd  # noqa: E402

from nexa_core.config import DataConfig  # noqa: E402
from nexa_core.data import prepare_dataset  # noqa: E402
from nexa_core.data.incremental import build_version, ingest_drop  # noqa: E402

WORDS = ("great superb lovely moving brilliant charming funny warm awful boring dull clumsy tedious flat lifeless "
         "stale the movie film plot cast story script scene director ending music acting").split()
CFG = DataConfig(path="unused", text_column="review", label_column="sentiment")
SEED = 42


def write_drop(folder: Path, name: str, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    records = [{"review": " ".join(rng.choices(WORDS, k=rng.randint(6, 30))) + f" #{seed}-{i}",
                "sentiment": rng.choice(("pos", "neg"))} for i in range(rows)]
    path = folder / name
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def process(store: Path, path: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    record = ingest_drop(CFG, store / "drops", path.name, path, SEED)
    dataset = build_version(CFG, store / "datasets", store / "drops", SEED)
    assert record["status"] == "valid" and dataset is not None
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows per drop")
    parser.add_argument("--rounds", type=int, default=7, help="new drops timed in each store")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nexa-bench-incremental-") as tmp:
        tmp = Path(tmp)
        raw = tmp / "raw"
        raw.mkdir()
        stores = {1: tmp / "one", 30: tmp / "thirty"}
        earlier = [write_drop(raw, f"earlier-{i:02d}.csv", args.rows, seed=i) for i in range(30)]
        print(f"setting up: {args.rows} rows per drop; materializing 1 and 30 earlier drops ...", flush=True)
        for count, store in stores.items():
            for path in earlier[:count]:
                process(store, path)
        times = {count: [] for count in stores}
        for r in range(args.rounds):
            path = write_drop(raw, f"new-{r:02d}.csv", args.rows, seed=1000 + r)
            order = list(stores) if r % 2 == 0 else list(stores)[::-1]
            for count in order:
                times[count].append(process(stores[count], path))
        med = {c: (statistics.median(w for w, _ in t), statistics.median(c_ for _, c_ in t)) for c, t in times.items()}
        full = tmp / "full"
        wall = time.perf_counter()
        prepare_dataset(DataConfig(path=str(raw), text_column="review", label_column="sentiment"), full, SEED)
        full_s = time.perf_counter() - wall
    print(f"{'earlier drops':>14} | {'wall s (median)':>15} | {'cpu s (median)':>14}")
    for count, (w, c) in med.items():
        print(f"{count:>14} | {w:>15.4f} | {c:>14.4f}")
    ratio = med[30][0] / med[1][0]
    print(f"ratio 30 vs 1 earlier drops: {ratio:.2f}x (target <= 1.2; cpu {med[30][1] / med[1][1]:.2f}x)")
    print(f"for contrast, a full re-prepare of all {30 + args.rounds} drops' rows: {full_s:.2f} s")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
