"""Specification of the distillation pair filters (nexa_core.distill.filters) and near-duplicate detection."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from nexa_core.common.errors import NexaError
from nexa_core.config import FilterConfig
from nexa_core.distill import near_dup
from nexa_core.distill.filters import DROP_REASONS, filter_pairs, is_degenerate
from nexa_core.distill.inputs import input_id
from nexa_core.distill.near_dup import jaccard, near_duplicate_mask, shingles

ZERO = dict.fromkeys(DROP_REASONS, 0)


def _classifier(rows) -> pd.DataFrame:
    """rows: (text, label_id, predicted, confidence); label_id -1 = unlabelled."""
    return pd.DataFrame({
        "input_id": [input_id(t) for t, *_ in rows],
        "text": [t for t, *_ in rows],
        "label": [None if g < 0 else ("neg", "pos")[g] for _, g, _, _ in rows],
        "label_id": [g for _, g, _, _ in rows],
        "predicted": [p for *_, p, _ in rows],
        "confidence": [c for *_, c in rows],
    })


def _causal(rows) -> pd.DataFrame:
    """rows: (text, completion)."""
    return pd.DataFrame({
        "input_id": [input_id(t) for t, _ in rows],
        "text": [t for t, _ in rows],
        "label": [None] * len(rows),
        "label_id": [-1] * len(rows),
        "completion": [c for _, c in rows],
        "token_logprobs": [[-0.1] * len(c.split()) for _, c in rows],
    })


def _check(pairs, kept, counts):
    """The invariants of every filter call: counts cover every reason and add up, order and columns kept."""
    assert list(counts) == list(DROP_REASONS)
    assert sum(counts.values()) == len(pairs) - len(kept)
    assert list(kept.columns) == list(pairs.columns)
    positions = [pairs["input_id"].tolist().index(i) for i in kept["input_id"]]
    assert positions == sorted(positions)
    assert list(kept.index) == list(range(len(kept)))


def _long(words: int, offset: int = 0) -> str:
    return " ".join(f"w{offset + i}" for i in range(words))


# --- classifier ------------------------------------------------------------------------------------------------

def test_every_classifier_reason_with_its_boundaries():
    long_text = _long(80)
    one_word_changed = long_text.replace(" w40 ", " changed ")  # Jaccard 75/81 = 0.93
    pairs = _classifier([
        ("abcd", 0, 0, 0.99),                  # too_short (4 < 5)
        ("abcde", 0, 0, 0.99),                 # kept: exactly min_chars
        ("x" * 500, 0, 0, 0.99),               # kept: exactly max_chars
        ("x" * 501, 0, 0, 0.99),               # too_long
        ("confident enough", 1, 1, 0.7),       # kept: confidence exactly at min_confidence
        ("not confident", 1, 1, 0.6999),       # low_confidence
        ("teacher disagrees", 1, 0, 0.95),     # gold_disagreement
        ("nobody knows the label", -1, 0, 0.95),  # kept: unlabelled rows are never gold_disagreement
        ("Great movie!", 1, 1, 0.9),           # kept: the first copy
        ("great   MOVIE", 1, 1, 0.9),          # duplicate after lowercase, punctuation and spaces
        (long_text, 1, 1, 0.9),                # kept
        (one_word_changed, 1, 1, 0.9),         # near_duplicate
        (_long(80, offset=1000), 1, 1, 0.9),   # kept: a distinct long text
        ("abc", 1, 0, 0.1),                    # too_short first: each row counts under one reason only
    ])
    cfg = FilterConfig(min_chars=5, max_chars=500, min_confidence=0.7)
    kept, counts = filter_pairs(pairs, cfg, "classifier")
    _check(pairs, kept, counts)
    assert counts == {**ZERO, "too_short": 2, "too_long": 1, "low_confidence": 1, "gold_disagreement": 1,
                      "duplicate": 1, "near_duplicate": 1}
    assert kept["text"].tolist() == ["abcde", "x" * 500, "confident enough", "nobody knows the label",
                                     "Great movie!", long_text, _long(80, offset=1000)]
    assert pd.isna(kept["label"].tolist()[3]) and kept["label_id"].tolist()[3] == -1


def test_gold_agreement_can_be_switched_off_and_nan_confidence_is_low():
    pairs = _classifier([("teacher disagrees", 1, 0, 0.95), ("no score", 0, 0, float("nan"))])
    kept, counts = filter_pairs(pairs, FilterConfig(require_gold_agreement=False), "classifier")
    _check(pairs, kept, counts)
    assert kept["text"].tolist() == ["teacher disagrees"]
    assert counts == {**ZERO, "low_confidence": 1}


def test_a_rejected_row_never_hides_a_good_copy():
    pairs = _classifier([("same text here", 1, 1, 0.2), ("same text here", 1, 1, 0.9),
                         ("same text here!", 1, 1, 0.95)])
    kept, counts = filter_pairs(pairs, FilterConfig(min_confidence=0.5), "classifier")
    _check(pairs, kept, counts)
    assert kept["confidence"].tolist() == [0.9]
    assert counts == {**ZERO, "low_confidence": 1, "duplicate": 1}


def test_dedupe_off_and_threshold_one_keep_duplicates():
    text = _long(80)
    pairs = _classifier([(text, 1, 1, 0.9), (text.replace(" w40 ", " x "), 1, 1, 0.9), (text + "!", 1, 1, 0.9)])
    kept, counts = filter_pairs(pairs, FilterConfig(near_duplicate_threshold=1.0), "classifier")
    assert len(kept) == 2 and counts == {**ZERO, "duplicate": 1}  # 1.0: near-duplicates are kept
    kept, counts = filter_pairs(pairs, FilterConfig(dedupe=False), "classifier")
    assert len(kept) == 3 and counts == ZERO  # dedupe off: neither exact nor near duplicates are dropped
    kept, counts = filter_pairs(pairs, FilterConfig(near_duplicate_threshold=0.95), "classifier")
    assert len(kept) == 2 and counts == {**ZERO, "duplicate": 1}  # 0.926 < 0.95

    # Different texts with the same shingle set (Jaccard exactly 1): 1.0 still means off, not "identical only".
    same_set = _classifier([("x y z x y", 1, 1, 0.9), ("y z x y z", 1, 1, 0.9)])
    assert jaccard(shingles("x y z x y"), shingles("y z x y z")) == 1.0
    kept, counts = filter_pairs(same_set, FilterConfig(near_duplicate_threshold=1.0), "classifier")
    assert len(kept) == 2 and counts == ZERO
    kept, counts = filter_pairs(same_set, FilterConfig(near_duplicate_threshold=0.99), "classifier")
    assert kept["text"].tolist() == ["x y z x y"] and counts == {**ZERO, "near_duplicate": 1}


def test_empty_input_unknown_kind_and_missing_columns():
    empty = _classifier([])
    kept, counts = filter_pairs(empty, FilterConfig(), "classifier")
    assert kept.empty and list(kept.columns) == list(empty.columns) and counts == ZERO
    with pytest.raises(NexaError, match=r"distill\.kind: 'seq2seq' is not a kind"):
        filter_pairs(empty, FilterConfig(), "seq2seq")
    with pytest.raises(NexaError, match=r"kind=classifier lack columns \['predicted', 'confidence'\]"):
        filter_pairs(empty.drop(columns=["predicted", "confidence"]), FilterConfig(), "classifier")
    with pytest.raises(NexaError, match=r"kind=causal_lm lack columns \['completion'\]"):
        filter_pairs(empty, FilterConfig(), "causal_lm")


# --- causal LM ---------------------------------------------------------------------------------------------------

def test_every_generation_reason_with_its_boundaries():
    pairs = _causal([
        ("q1", "   \n "),                                   # empty_generation: blank
        ("q2", "ok"),                                      # empty_generation: 2 < min_completion_chars
        ("q3", "yes"),                                     # kept: exactly min_completion_chars
        ("q4", "y" * 50),                                  # kept: exactly max_completion_chars
        ("q5", "y" * 51),                                  # long_generation
        ("q6", "the the the the"),                         # degenerate: one word four times in a row
        ("q7", "the the the"),                             # kept: three is not a loop
        ("q8", "I am sure. I am sure. I am sure. I am sure."),  # degenerate: 7 of 10 3-grams repeat
        ("q9", "a b c a b c"),                             # kept: 1 of 4 3-grams repeat (0.25 <= 0.3)
        ("q10", "A short, sensible answer."),              # kept
        ("", "an answer to nothing"),                      # too_short input
        ("q10", "another answer"),                         # duplicate input
    ])
    cfg = FilterConfig(min_completion_chars=3, max_completion_chars=50, max_repeated_ngram_fraction=0.3)
    kept, counts = filter_pairs(pairs, cfg, "causal_lm")
    _check(pairs, kept, counts)
    assert counts == {**ZERO, "too_short": 1, "empty_generation": 2, "long_generation": 1,
                      "degenerate_generation": 2, "duplicate": 1}
    assert kept["text"].tolist() == ["q3", "q4", "q7", "q9", "q10"]
    assert kept["token_logprobs"].tolist()[0] == [-0.1]  # extra columns travel untouched


def test_degenerate_boundaries():
    assert is_degenerate("a b c a b c", 0.2) and not is_degenerate("a b c a b c", 0.25)  # fraction > max only
    assert is_degenerate("and then, THEN then then.", 0.9)  # punctuation and case do not hide a loop
    assert not is_degenerate("", 0.5) and not is_degenerate("short", 0.5)
    assert not is_degenerate("The quick brown fox jumps over the lazy dog near the river bank.", 0.5)


# --- near duplicates ------------------------------------------------------------------------------------------

def test_shingles_and_jaccard():
    assert shingles("The cat, sat on the MAT") == {"the cat sat", "cat sat on", "sat on the", "on the mat"}
    assert shingles("Hello, world") == {"hello world"} and shingles("!!") == frozenset()
    assert jaccard(shingles("a b c d"), shingles("a b c e")) == pytest.approx(1 / 3)
    assert jaccard(frozenset(), frozenset()) == 0.0


def _synthetic(n=1000, words=40, seed=7):
    """n random texts plus near-duplicates planted at known rows; returns (texts, planted rows)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"tok{i}" for i in range(5000)])
    texts = [" ".join(rng.choice(vocab, words)) for _ in range(n)]
    planted = {}
    for target, source in ((120, 3), (400, 250), (777, 10), (901, 900), (999, 500)):
        if target >= n:
            continue
        toks = texts[source].split()
        toks[-1] = "edited"  # one shingle of 38 changes: Jaccard 37/39 = 0.95
        texts[target] = " ".join(toks)
        planted[target] = source
    return texts, planted


def test_lsh_path_finds_planted_near_duplicates_quickly(monkeypatch):
    texts, planted = _synthetic()

    def no_exact(*args):
        raise AssertionError("the exact pairwise path must not run on 1000 rows")

    monkeypatch.setattr(near_dup, "_exact_pairwise", no_exact)
    start = time.perf_counter()
    mask = near_duplicate_mask(texts, 0.9)
    elapsed = time.perf_counter() - start
    assert sorted(np.flatnonzero(mask).tolist()) == sorted(planted)
    assert elapsed < 2.0, f"near-duplicate detection on 1000 rows took {elapsed:.2f}s"

    # The same through filter_pairs: the planted copies are dropped, every original is kept.
    pairs = _classifier([(t, 1, 1, 0.9) for t in texts])
    start = time.perf_counter()
    kept, counts = filter_pairs(pairs, FilterConfig(), "classifier")
    assert time.perf_counter() - start < 2.0
    assert counts == {**ZERO, "near_duplicate": len(planted)}
    assert set(kept["text"]) == {t for i, t in enumerate(texts) if i not in planted}


def test_lsh_agrees_with_exact_and_respects_the_threshold():
    texts, planted = _synthetic(n=300, words=30, seed=11)
    # A weaker copy: a middle word changed, Jaccard 25/31 = 0.81 with its source (row 5).
    toks = texts[5].split()
    toks[15] = "edited"
    texts.append(" ".join(toks))
    for threshold, extra in ((0.9, []), (0.8, [300]), (1.0, None)):
        exact = near_duplicate_mask(texts, threshold, method="exact")
        lsh = near_duplicate_mask(texts, threshold, method="lsh")
        assert exact.tolist() == lsh.tolist()
        expected = [] if extra is None else sorted([*planted, *extra])
        assert np.flatnonzero(lsh).tolist() == expected
    assert near_dup.bands_for(0.9)[0] * near_dup.bands_for(0.9)[1] <= near_dup.NUM_PERM


def test_minhash_signatures_are_deterministic():
    sets = [shingles("one two three four five"), frozenset(), shingles("six seven eight")]
    first = near_dup.minhash_signatures(sets)
    assert first.shape == (3, near_dup.NUM_PERM)
    assert (first == near_dup.minhash_signatures(sets)).all()
    assert (first[1] == np.iinfo(np.uint64).max).all()  # no shingles, no signature
