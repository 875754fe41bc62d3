"""Tiny, fully local stand-ins for the demo data and model: a learnable CSV and a 2-layer BERT."""

from __future__ import annotations

import random
from pathlib import Path

POSITIVE = "great superb lovely moving brilliant charming funny warm delightful fresh".split()
NEGATIVE = "awful boring dull clumsy tedious flat lifeless stale weak rotten".split()
FILLER = "the movie film plot cast story script scene director ending music acting".split()


def write_reviews_csv(path: Path, rows: int = 240, seed: int = 0) -> Path:
    """Rows whose label is decided by sentiment words, so a tiny model learns it in a few steps."""
    import pandas as pd

    rng = random.Random(seed)
    records = []
    for i in range(rows):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(FILLER, rng.randint(2, 8)) + rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2)
        rng.shuffle(words)
        records.append({"review": " ".join(words) + f" {i}", "sentiment": label})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def make_tiny_bert(path: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised BERT (seeded) with a WordPiece tokenizer over the tiny vocabulary."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # The vocabulary is listed, not trained: tokenizers' WordPiece trainer breaks frequency ties in a different
    # order in every process, which gave each test session a different model (and flaky outcomes).
    words = sorted(set(POSITIVE + NEGATIVE + FILLER))
    chars = sorted(set("".join(words)) | set("0123456789"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *words]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(path)  # a "pretrained" base without a classifier head
    return path
