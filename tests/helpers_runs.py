"""Test helpers: a fake *finished* training run with a real (tiny) Hugging Face model.

`make_finished_run(layout, run_id)` writes what a successful `nexa train` leaves behind:
`<durable>/runs/<run_id>/final/` (save_pretrained model + tokenizer), `config.yaml`, `metrics.json`,
and the manifest at `<durable>/runs/manifests/<run_id>.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from nexa_core.common.layout import Layout

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "great", "awful", "movie", "the", "was", "a"]


def make_layout(root: Path) -> Layout:
    return Layout(scratch=root / "scratch", durable=root / "durable", shared=root / "shared")


def make_finished_run(layout: Layout, run_id: str, label_names=("neg", "pos"), seed: int = 0) -> Path:
    """Create a finished run folder for `run_id` and return it (the run folder, not final/)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    run_dir = layout.run_dir(run_id)
    final = run_dir / "final"
    final.mkdir(parents=True, exist_ok=True)

    vocab_file = run_dir / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
    vocab_file.unlink()

    id2label = {i: name for i, name in enumerate(label_names)}
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=len(label_names),
        id2label=id2label,
        label2id={name: i for i, name in id2label.items()},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)

    (run_dir / "config.yaml").write_text(
        f"run:\n  name: {run_id.rsplit('_', 2)[0]}\nmodel:\n  name_or_path: tiny-bert\n", encoding="utf-8"
    )
    (run_dir / "metrics.json").write_text(json.dumps({"eval_accuracy": 0.5, "eval_loss": 0.69}) + "\n", encoding="utf-8")
    manifest = layout.manifest_path(run_id)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps({"run_id": run_id, "status": "succeeded", "final_dir": str(final), "labels": list(label_names)}) + "\n",
        encoding="utf-8",
    )
    return run_dir
