"""Which teacher outputs become distillation pairs. Every dropped row is counted under one reason.

Reasons, in the order they are checked (a row is counted under the first that applies, and only rows that
survive the per-row checks take part in the duplicate checks, so a rejected row never hides a good copy):

  too_short / too_long    input text (stripped) shorter than min_chars / longer than max_chars
  low_confidence          classifier: confidence < min_confidence (exactly at the threshold is kept)
  gold_disagreement       classifier, require_gold_agreement: label_id >= 0 and predicted != label_id
                          (unlabelled rows, label_id -1, are never dropped for this)
  empty_generation        causal_lm: completion blank after strip or shorter than min_completion_chars
  long_generation         causal_lm: completion longer than max_completion_chars
  degenerate_generation   causal_lm: repeated word 3-gram fraction > max_repeated_ngram_fraction, or one word
                          repeated LOOP_RUN or more times in a row ("the the the the")
  duplicate               dedupe: same normalised input text (lowercase, no punctuation, collapsed spaces)
                          as an earlier kept row
  near_duplicate          dedupe: word 3-gram Jaccard >= near_duplicate_threshold with an earlier kept row
                          (1.0 disables; MinHash + LSH above a few hundred rows, see near_dup.py)

`dedupe: false` turns off both duplicate checks. Counts always list every reason (0 included).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from nexa_core.common.errors import NexaError
from nexa_core.config import FilterConfig
from nexa_core.distill.near_dup import near_duplicate_mask, normalise

DROP_REASONS = ("too_short", "too_long", "low_confidence", "gold_disagreement", "empty_generation",
                "long_generation", "degenerate_generation", "duplicate", "near_duplicate")
KINDS = ("classifier", "causal_lm")
LOOP_RUN = 4  # the same word this many times in a row is a generation loop
_REQUIRED = {"classifier": ("input_id", "text", "label_id", "predicted", "confidence"),
             "causal_lm": ("input_id", "text", "completion")}


def filter_pairs(pairs: pd.DataFrame, cfg: FilterConfig, kind: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return (kept rows: same columns, original order, fresh index; drop counts by reason)."""
    if kind not in KINDS:
        raise NexaError(f"distill.kind: {kind!r} is not a kind; use one of {list(KINDS)}")
    missing = [c for c in _REQUIRED[kind] if c not in pairs.columns]
    if missing:
        raise NexaError(f"teacher outputs for kind={kind} lack columns {missing} (have {list(pairs.columns)}); "
                        "run teacher inference again or set distill.kind to match the teacher")
    counts = dict.fromkeys(DROP_REASONS, 0)
    reason = np.full(len(pairs), "", dtype=object)  # "" = kept so far

    def drop(name: str, mask: Any) -> None:
        hit = np.asarray(mask, dtype=bool) & (reason == "")
        reason[hit] = name
        counts[name] += int(hit.sum())

    lengths = np.array([len(_str(t).strip()) for t in pairs["text"].tolist()], dtype=np.int64)
    drop("too_short", lengths < cfg.min_chars)
    drop("too_long", lengths > cfg.max_chars)
    if kind == "classifier":
        confidence = pd.to_numeric(pairs["confidence"], errors="coerce").to_numpy(dtype=float)
        drop("low_confidence", ~(confidence >= cfg.min_confidence))  # NaN confidence counts as low
        if cfg.require_gold_agreement:
            gold = pd.to_numeric(pairs["label_id"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
            predicted = pd.to_numeric(pairs["predicted"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
            drop("gold_disagreement", (gold >= 0) & (predicted != gold))
    else:
        completions = [_str(c).strip() for c in pairs["completion"].tolist()]
        sizes = np.array([len(c) for c in completions], dtype=np.int64)
        drop("empty_generation", (sizes == 0) | (sizes < cfg.min_completion_chars))
        drop("long_generation", sizes > cfg.max_completion_chars)
        drop("degenerate_generation", [is_degenerate(c, cfg.max_repeated_ngram_fraction) for c in completions])

    if cfg.dedupe:
        alive = np.flatnonzero(reason == "")
        keys = [normalise(_str(t)) for t in pairs["text"].iloc[alive].tolist()]
        seen: set[str] = set()
        dup = np.zeros(len(pairs), dtype=bool)
        for i, key in zip(alive, keys):
            dup[i] = key in seen
            seen.add(key)
        drop("duplicate", dup)
        alive = np.flatnonzero(reason == "")
        near = np.zeros(len(pairs), dtype=bool)
        near[alive] = near_duplicate_mask([_str(t) for t in pairs["text"].iloc[alive].tolist()],
                                          cfg.near_duplicate_threshold)
        drop("near_duplicate", near)

    return pairs.iloc[np.flatnonzero(reason == "")].reset_index(drop=True), counts


def is_degenerate(completion: str, max_repeated_fraction: float) -> bool:
    """A generation loop: too many repeated word 3-grams, or one word LOOP_RUN+ times in a row."""
    words = normalise(completion).split()
    run = 1
    for prev, word in zip(words, words[1:]):
        run = run + 1 if word == prev else 1
        if run >= LOOP_RUN:
            return True
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    return bool(grams) and 1.0 - len(set(grams)) / len(grams) > max_repeated_fraction


def _str(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
