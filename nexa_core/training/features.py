"""Tokenise a prepared split once, without padding: batches are padded dynamically by the collator."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def tokenized_split(dataset_dir: Path, split: str, tokenizer, max_length: int):
    import datasets

    frame = pd.read_parquet(Path(dataset_dir) / f"{split}.parquet", columns=["text", "label_id"])
    encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=max_length)
    columns = {key: list(values) for key, values in encoded.items()}
    columns["labels"] = frame["label_id"].astype("int64").tolist()
    # Precomputed lengths let the length-grouped sampler skip a pass over the data.
    columns["length"] = [len(ids) for ids in encoded["input_ids"]]
    return datasets.Dataset.from_dict(columns)


def tokenized_pairs(pairs_path: Path, tokenizer, max_length: int):
    """Distillation pairs: text, gold label id (-1 = none -> ignored by CE) and the teacher's top-k logits."""
    import datasets

    frame = pd.read_parquet(pairs_path, columns=["text", "label_id", "topk_ids", "topk_logits"])
    encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=max_length)
    columns = {key: list(values) for key, values in encoded.items()}
    columns["labels"] = [int(v) if v >= 0 else -100 for v in frame["label_id"]]
    columns["teacher_topk_ids"] = [list(map(int, v)) for v in frame["topk_ids"]]
    columns["teacher_topk_logits"] = [list(map(float, v)) for v in frame["topk_logits"]]
    columns["length"] = [len(ids) for ids in encoded["input_ids"]]
    return datasets.Dataset.from_dict(columns)
