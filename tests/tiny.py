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
    """A randomly initialised BERT with a WordPiece tokenizer trained on the tiny vocabulary."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    corpus = [" ".join(POSITIVE + NEGATIVE + FILLER)] + [str(i) for i in range(1000)]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    vocab = tok.get_vocab()
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(path)  # a "pretrained" base without a classifier head
    return path
