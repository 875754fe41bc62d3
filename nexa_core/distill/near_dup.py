"""Near-duplicate detection: Jaccard similarity of word 3-gram shingles, keeping the first of each group.

Up to EXACT_MAX_ROWS rows every row is compared with every earlier kept row. Above that, MinHash signatures
(NUM_PERM universal hashes with fixed seeds, computed with numpy) and LSH banding give candidate pairs in
near-linear time; every candidate is then verified with the exact Jaccard, so nothing is dropped on an
estimate. Banding is chosen so that a pair exactly at the threshold becomes a candidate with probability
>= 0.995 (higher above it); results are deterministic across runs and machines.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

EXACT_MAX_ROWS = 256
NUM_PERM = 128
SEED = 20261122
_PRIME = np.uint64(4294967291)  # largest prime < 2**32: a*x + b stays below 2**64 for 32-bit x, a, b
_CHUNK = 32768  # shingles hashed per numpy block (NUM_PERM x _CHUNK uint64 = 32 MiB)
_PUNCT = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace: the key for exact and near duplicates."""
    return _SPACES.sub(" ", _PUNCT.sub(" ", str(text).lower())).strip()


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Word n-grams of the normalised text; a text shorter than n words is one shingle (none if empty)."""
    words = normalise(text).split()
    if len(words) < n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def near_duplicate_mask(texts: Sequence[str], threshold: float, method: str = "auto") -> np.ndarray:
    """True for each text whose Jaccard with an earlier *kept* text is >= threshold (the first copy is kept).

    threshold >= 1.0 disables the check. method: "auto" (exact up to EXACT_MAX_ROWS rows, else LSH),
    "exact" or "lsh". Texts without words are never near-duplicates (exact duplicates are a separate check).
    """
    if method not in ("auto", "exact", "lsh"):
        raise ValueError(f"method must be auto, exact or lsh, got {method!r}")
    sets = [shingles(t) for t in texts]
    if threshold >= 1.0 or len(sets) < 2:
        return np.zeros(len(sets), dtype=bool)
    if method == "exact" or (method == "auto" and len(sets) <= EXACT_MAX_ROWS):
        return _exact_pairwise(sets, threshold)
    return _lsh(sets, threshold)


def _exact_pairwise(sets: list[frozenset], threshold: float) -> np.ndarray:
    mask = np.zeros(len(sets), dtype=bool)
    kept: list[frozenset] = []
    for i, s in enumerate(sets):
        if s and any(jaccard(s, k) >= threshold for k in kept):
            mask[i] = True
        elif s:
            kept.append(s)
    return mask


def bands_for(threshold: float, num_perm: int = NUM_PERM, recall: float = 0.995) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (fewest false candidates) that still make a pair at
    `threshold` a candidate with probability >= recall."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold ** rows) ** bands >= recall:
            best = (bands, rows)
    return best


def minhash_signatures(sets: list[frozenset], num_perm: int = NUM_PERM, seed: int = SEED) -> np.ndarray:
    """(len(sets), num_perm) uint64 MinHash signatures; empty sets get all-max rows."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(_PRIME), size=num_perm, dtype=np.uint64)[:, None]
    b = rng.integers(0, int(_PRIME), size=num_perm, dtype=np.uint64)[:, None]
    sig = np.full((len(sets), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for rows, hashes, starts in _blocks(sets):
        vals = (a * hashes[None, :] + b) % _PRIME
        sig[rows] = np.minimum.reduceat(vals, starts, axis=1).T
    return sig


def _blocks(sets: list[frozenset]) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Non-empty rows in groups of about _CHUNK shingles: (row indices, shingle hashes, start offsets)."""
    rows: list[int] = []
    hashes: list[int] = []
    starts: list[int] = []
    for i, s in enumerate(sets):
        if not s:
            continue
        rows.append(i)
        starts.append(len(hashes))
        hashes.extend(zlib.crc32(x.encode("utf-8")) for x in s)  # stable across processes, unlike hash()
        if len(hashes) >= _CHUNK:
            yield np.array(rows), np.array(hashes, dtype=np.uint64), np.array(starts)
            rows, hashes, starts = [], [], []
    if rows:
        yield np.array(rows), np.array(hashes, dtype=np.uint64), np.array(starts)


def _lsh(sets: list[frozenset], threshold: float) -> np.ndarray:
    bands, rows = bands_for(threshold)
    sig = minhash_signatures(sets)[:, :bands * rows].reshape(len(sets), bands, rows)
    # One uint64 key per (row, band): a fixed random linear mix of the band's values (wrapping is fine).
    mix = np.random.default_rng(SEED + 1).integers(1, 2**63, size=rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        keys = (sig * mix).sum(axis=2, dtype=np.uint64).tolist()
    buckets: list[dict[int, list[int]]] = [{} for _ in range(bands)]
    mask = np.zeros(len(sets), dtype=bool)
    for i, s in enumerate(sets):
        if not s:
            continue
        candidates: set[int] = set()
        for band, key in enumerate(keys[i]):
            candidates.update(buckets[band].get(key, ()))
        if any(jaccard(s, sets[j]) >= threshold for j in sorted(candidates)):
            mask[i] = True
            continue
        for band, key in enumerate(keys[i]):
            buckets[band].setdefault(key, []).append(i)
    return mask
