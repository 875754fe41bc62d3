"""Tokenise a prepared split once, without padding: batches are padded dynamically by the collator."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def tokenized_split(dataset_dir: Path, split: str, tokenizer, max_length: int):
    frame = pd.read_parquet(Path(dataset_dir) / f"{split}.parquet", columns=["text", "label_id"])
    return _tokenized(frame, tokenizer, max_length)


def tokenized_train(dataset_dir: Path, tokenizer, max_length: int, world_size: int = 1, rank: int = 0):
    """The train split, and whether it is this rank's own part: under DDP (world_size > 1) a version prepared with
    data.shards > 1 gives each rank only its shards (r, r+W, ...), cut to equal length; otherwise the whole split,
    which the distributed sampler splits. The loader must not split rank-local rows again (NexaTrainer)."""
    from nexa_core.data.shards import read_rank_shards, shard_count

    if world_size > 1 and shard_count(dataset_dir) > 1:
        frame = read_rank_shards(dataset_dir, world_size, rank, ["text", "label_id"], even=True)
        return _tokenized(frame, tokenizer, max_length), True
    return tokenized_split(dataset_dir, "train", tokenizer, max_length), False


def _tokenized(frame: pd.DataFrame, tokenizer, max_length: int):
    import datasets

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
