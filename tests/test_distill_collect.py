"""Teacher-output collection: same numbers as a plain forward, chunked, incremental and resumable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from nexa_core.common.errors import NexaError
from nexa_core.distill import collect
from nexa_core.distill.collect import collect_classification, collect_generation, read_outputs, teacher_version
from tests.tiny import write_reviews_csv
from tests.tiny_gpt2 import make_tiny_gpt2

CHUNK_NAME = re.compile(r"^chunk-\d{6}-[0-9a-f]{8}\.parquet$")


@pytest.fixture(scope="module")
def teacher(tiny_model, tmp_path_factory) -> Path:
    """A 3-label classifier saved once, with the tiny BERT's shape and tokenizer.

    Initialised with large weights (std 0.5) so predictions and confidences really differ between inputs: with
    the default std the random [CLS] vector is nearly the same for every text and any bug would go unseen.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(tiny_model, num_labels=3, initializer_range=0.5)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> pd.DataFrame:
    frame = pd.read_csv(write_reviews_csv(tmp_path_factory.mktemp("inputs") / "r.csv", rows=40, seed=3))
    # Long and short texts mixed, so length sorting and padding both matter.
    text = [t if i % 3 else (t + " ") * 4 for i, t in enumerate(frame["review"])]
    return pd.DataFrame({"input_id": [f"r{i:03d}" for i in range(len(frame))], "text": text})


def chunks(out_dir: Path) -> dict[str, int]:
    """Chunk file name -> mtime_ns: the chunks a later run must leave untouched."""
    return {p.name: p.stat().st_mtime_ns for p in sorted(out_dir.glob("chunk-*.parquet"))}


def plain_logits(model_dir: Path, texts: list[str], max_length: int) -> np.ndarray:
    """One text at a time, no padding, fp32: the reference the batched collector must match."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return torch.cat([model(**tokenizer(t, truncation=True, max_length=max_length, return_tensors="pt")).logits
                          for t in texts]).numpy()


def classify(teacher, frame, out_dir, **kw) -> dict:
    args = {"top_k": 2, "batch_size": 8, "max_length": 32, "chunk_size": 16, "device": "cpu", **kw}
    return collect_classification(teacher, frame, out_dir, **args)


def test_classification_matches_a_plain_forward(teacher, reviews, tmp_path):
    stats = classify(teacher, reviews, tmp_path / "out")
    assert stats["computed"] == 40 and stats["skipped"] == 0 and stats["chunks_written"] == 3  # 16 + 16 + 8
    assert stats["inputs_per_second"] > 0
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 3 and all(CHUNK_NAME.match(p.name) for p in files)  # no temp file left behind
    schema = pq.read_schema(files[0])
    assert {name: str(schema.field(name).type) for name in schema.names} == {
        "input_id": "string", "topk_ids": "list<element: int64>", "topk_logits": "list<element: float>",
        "predicted": "int64", "confidence": "float", "teacher_version": "string"}

    out = read_outputs(tmp_path / "out").set_index("input_id").loc[reviews["input_id"]]
    ref = plain_logits(teacher, reviews["text"].tolist(), max_length=32)
    ids, logits = np.stack(out["topk_ids"].to_numpy()), np.stack(out["topk_logits"].to_numpy())
    assert ids.shape == (40, 2)  # top_k=2 of 3 labels
    np.testing.assert_array_equal(ids, np.argsort(-ref, axis=1)[:, :2])
    np.testing.assert_allclose(logits, np.take_along_axis(ref, ids, axis=1), atol=1e-4)
    np.testing.assert_array_equal(out["predicted"].to_numpy(), ref.argmax(axis=1))
    probs = np.exp(ref - ref.max(1, keepdims=True))
    np.testing.assert_allclose(out["confidence"].to_numpy(), (probs / probs.sum(1, keepdims=True)).max(1), atol=1e-5)
    assert np.ptp(out["confidence"].to_numpy()) > 0.05 and len(set(ids[:, 0])) > 1  # not a degenerate reference
    assert set(out["teacher_version"]) == {teacher_version(teacher)}


def test_top_k_is_capped_at_the_number_of_labels(teacher, reviews, tmp_path):
    classify(teacher, reviews.head(5), tmp_path / "out", top_k=10)
    assert {len(ids) for ids in read_outputs(tmp_path / "out")["topk_ids"]} == {3}


def test_teacher_version_identifies_weights_and_config(teacher, tmp_path):
    version = teacher_version(teacher)
    assert re.fullmatch(r"[0-9a-f]{16}", version) and teacher_version(teacher) == version
    other = Path(shutil.copytree(teacher, tmp_path / "other"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "id2label": {"0": "a", "1": "b", "2": "c"}}))
    assert teacher_version(other) != version
    with pytest.raises(NexaError, match="no config.json"):
        teacher_version(tmp_path)


def test_rerun_computes_nothing_and_overlap_computes_only_new_ids(teacher, reviews, tmp_path):
    out_dir = tmp_path / "out"
    assert classify(teacher, reviews.head(30), out_dir)["computed"] == 30
    before = chunks(out_dir)

    again = classify(teacher, reviews.head(30), out_dir)
    assert (again["computed"], again["skipped"], again["chunks_written"]) == (0, 30, 0)
    assert chunks(out_dir) == before

    overlap = classify(teacher, reviews.iloc[20:40], out_dir)  # 10 known, 10 new
    assert (overlap["computed"], overlap["skipped"]) == (10, 10)
    after = chunks(out_dir)
    assert {k: v for k, v in after.items() if k in before} == before and len(after) == len(before) + 1
    everything = read_outputs(out_dir)
    assert sorted(everything["input_id"]) == sorted(reviews["input_id"])  # each id exactly once
    subset = read_outputs(out_dir, ["r001", "r039", "missing"])
    assert sorted(subset["input_id"]) == ["r001", "r039"]


def test_interrupted_run_resumes_after_its_last_finished_chunk(teacher, reviews, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    real_write, calls = collect._write_chunk, []

    def write_then_die(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("killed mid-run")
        calls.append(args)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(collect, "_write_chunk", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        classify(teacher, reviews.head(20), out_dir, chunk_size=5, batch_size=4)
    finished = chunks(out_dir)
    assert len(finished) == 1 and len(read_outputs(out_dir)) == 5
    (out_dir / ".chunk-000001-deadbeef.parquet.1234.tmp").write_bytes(b"partial")  # a crash mid-write

    monkeypatch.setattr(collect, "_write_chunk", real_write)
    resumed = classify(teacher, reviews.head(20), out_dir, chunk_size=5, batch_size=4)
    assert (resumed["computed"], resumed["skipped"], resumed["chunks_written"]) == (15, 5, 3)
    after = chunks(out_dir)
    assert {k: after[k] for k in finished} == finished and len(after) == 4  # first chunk untouched
    names = sorted(after)
    assert [int(n.split("-")[1]) for n in names] == [0, 1, 2, 3]

    fresh_dir = tmp_path / "fresh"
    classify(teacher, reviews.head(20), fresh_dir, chunk_size=5, batch_size=4)
    got = read_outputs(out_dir).set_index("input_id").sort_index()
    want = read_outputs(fresh_dir).set_index("input_id").sort_index()
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(np.stack(got["topk_logits"].to_numpy()), np.stack(want["topk_logits"].to_numpy()),
                               atol=1e-5)


def test_killed_process_keeps_its_finished_chunks(teacher, reviews, tmp_path):
    """A real kill (SIGKILL from inside, after the second chunk): no temp file counts, the rest is resumed."""
    out_dir = tmp_path / "out"
    reviews.head(12).to_parquet(tmp_path / "inputs.parquet")
    script = f"""
import os, signal, pandas as pd
from nexa_core.distill import collect
real, n = collect._write_chunk, []
def write(*a, **k):
    path = real(*a, **k); n.append(path)
    if len(n) == 2: os.kill(os.getpid(), signal.SIGKILL)
    return path
collect._write_chunk = write
collect.collect_classification({str(teacher)!r}, pd.read_parquet({str(tmp_path / 'inputs.parquet')!r}),
    {str(out_dir)!r}, top_k=2, batch_size=4, max_length=32, chunk_size=4, device="cpu")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    finished = chunks(out_dir)
    assert len(finished) == 2
    resumed = classify(teacher, reviews.head(12), out_dir, chunk_size=4, batch_size=4)
    assert (resumed["computed"], resumed["skipped"]) == (4, 8)
    assert {k: v for k, v in chunks(out_dir).items() if k in finished} == finished


def test_outputs_of_another_teacher_version_are_refused(teacher, reviews, tmp_path):
    out_dir = tmp_path / "out"
    classify(teacher, reviews.head(4), out_dir)
    other = Path(shutil.copytree(teacher, tmp_path / "other"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "id2label": {"0": "a", "1": "b", "2": "c"}}))
    with pytest.raises(NexaError, match="one output folder per teacher version"):
        classify(other, reviews.head(8), out_dir)


def test_bad_inputs_are_one_line_errors(teacher, tmp_path):
    with pytest.raises(NexaError, match="missing column"):
        classify(teacher, pd.DataFrame({"id": ["a"], "text": ["x"]}), tmp_path / "out")
    with pytest.raises(NexaError, match="not a model folder"):
        classify(tmp_path, pd.DataFrame({"input_id": ["a"], "text": ["x"]}), tmp_path / "out")


def test_length_batches_cover_every_row_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(5, 40, 500), rng.integers(40, 512, 60)])  # a long, sparse tail
    batches = collect._length_batches(lengths, 64)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert max(map(len, batches)) == 64
    widths = [int(lengths[b].max()) for b in batches]
    assert widths == sorted(widths)  # ascending length
    padded = sum(w * len(b) for w, b in zip(widths, batches))
    fixed = sum(int(w.max()) * len(w) for w in np.array_split(np.sort(lengths), range(64, len(lengths), 64)))
    assert padded < 1.15 * lengths.sum() < fixed  # fixed-size sorted batches pad the tail far more


def test_read_outputs_of_an_empty_folder(tmp_path):
    assert read_outputs(tmp_path / "nothing").empty


# ----------------------------------------------------------------------------------------------- generation
PROMPTS = ["the film was", "great superb lovely moving brilliant charming", "dull", "the plot of the story",
           "funny warm music"]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> Path:
    return make_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def prompts() -> pd.DataFrame:
    return pd.DataFrame({"input_id": [f"p{i}" for i in range(len(PROMPTS))], "text": PROMPTS})


def plain_greedy(model_dir: Path, prompt: str, max_new_tokens: int) -> list[int]:
    """Unbatched, unpadded greedy decoding, all max_new_tokens steps (no eos stop)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def teacher_forced_logprobs(model_dir: Path, prompt: str, completion_ids: list[int]) -> np.ndarray:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer(prompt)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids + completion_ids])).logits[0], dim=-1)
    return np.array([logp[len(ids) - 1 + i, t].item() for i, t in enumerate(completion_ids)])


def generate(model_dir, frame, out_dir, **kw) -> dict:
    args = {"max_new_tokens": 6, "batch_size": 3, "chunk_size": 2, "device": "cpu", **kw}
    return collect_generation(model_dir, frame, out_dir, **args)


def test_generation_matches_unbatched_greedy_decoding(gpt2, prompts, tmp_path):
    from transformers import AutoTokenizer

    stats = generate(gpt2, prompts, tmp_path / "out")
    assert (stats["computed"], stats["chunks_written"]) == (5, 3)
    out = read_outputs(tmp_path / "out").set_index("input_id").loc[prompts["input_id"]]
    assert str(pq.read_schema(next((tmp_path / "out").glob("chunk-*"))).field("token_logprobs").type) == \
        "list<element: float>"
    tokenizer = AutoTokenizer.from_pretrained(gpt2)
    for prompt, (_, row) in zip(PROMPTS, out.iterrows()):
        tokens = plain_greedy(gpt2, prompt, 6)  # a random tiny model never says eos: 6 tokens each
        assert row["num_tokens"] == 6 == len(row["token_logprobs"])
        assert row["completion"] == tokenizer.decode(tokens, skip_special_tokens=True)
        logprobs = np.asarray(row["token_logprobs"])
        assert (logprobs <= 0).all()
        np.testing.assert_allclose(logprobs, teacher_forced_logprobs(gpt2, prompt, tokens), atol=1e-4)
        assert row["mean_logprob"] == pytest.approx(logprobs.mean(), abs=1e-6)
        assert row["teacher_version"] == teacher_version(gpt2)


def test_generation_stops_at_eos(gpt2, prompts, tmp_path):
    """Make a token the model emits the eos: the completion ends right before its first occurrence."""
    from transformers import AutoTokenizer

    tokens = plain_greedy(gpt2, PROMPTS[2], 6)
    stop = next((j for j in range(1, 6) if tokens[j] not in tokens[:j]), 0)
    model_dir = Path(shutil.copytree(gpt2, tmp_path / "gpt2"))
    gen = json.loads((model_dir / "generation_config.json").read_text())
    (model_dir / "generation_config.json").write_text(json.dumps({**gen, "eos_token_id": tokens[stop]}))
    generate(model_dir, prompts, tmp_path / "out")
    row = read_outputs(tmp_path / "out", ["p2"]).iloc[0]
    assert row["num_tokens"] == stop == len(row["token_logprobs"])
    assert row["completion"] == AutoTokenizer.from_pretrained(gpt2).decode(tokens[:stop], skip_special_tokens=True)
    assert np.isnan(row["mean_logprob"]) if stop == 0 else row["mean_logprob"] <= 0
    assert (read_outputs(tmp_path / "out")["num_tokens"] <= 6).all()


def test_generation_rerun_and_overlap(gpt2, prompts, tmp_path):
    out_dir = tmp_path / "out"
    assert generate(gpt2, prompts.head(3), out_dir)["computed"] == 3
    before = chunks(out_dir)
    again = generate(gpt2, prompts.head(3), out_dir)
    assert (again["computed"], again["skipped"]) == (0, 3) and chunks(out_dir) == before
    overlap = generate(gpt2, prompts.iloc[1:], out_dir)
    assert (overlap["computed"], overlap["skipped"]) == (2, 2)
    assert sorted(read_outputs(out_dir)["input_id"]) == sorted(prompts["input_id"])


def test_distill_package_import_is_light():
    code = "import sys, nexa_core.distill; print('torch' in sys.modules, 'dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout.split()
    assert out == ["False", "False"]


def test_chunk_writes_are_atomic(tmp_path):
    table = pa.Table.from_pydict({"input_id": ["a"], "teacher_version": ["v"]})
    path = collect._write_chunk(tmp_path, 7, table)
    assert CHUNK_NAME.match(path.name) and path.name.startswith("chunk-000007-")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# ------------------------------------------------------------------------------------------------- precision
def test_bf16_outputs_are_close_to_fp32_and_kept_under_their_own_version(teacher, reviews, tmp_path):
    fp32 = classify(teacher, reviews, tmp_path / "fp32", precision="fp32", top_k=3)
    bf16 = classify(teacher, reviews, tmp_path / "bf16", precision="bf16", top_k=3)
    assert fp32["precision"] == "fp32" and fp32["teacher_version"] == teacher_version(teacher)
    assert bf16["precision"] == "bf16" and bf16["teacher_version"] == f"{teacher_version(teacher)}-bf16"

    def full_logits(out_dir: Path) -> np.ndarray:
        out = read_outputs(out_dir).set_index("input_id").loc[reviews["input_id"]]
        logits = np.zeros((len(out), 3), dtype=np.float32)
        np.put_along_axis(logits, np.stack(out["topk_ids"].to_numpy()), np.stack(out["topk_logits"].to_numpy()), 1)
        return logits

    a, b = full_logits(tmp_path / "fp32"), full_logits(tmp_path / "bf16")
    assert np.abs(a - b).max() > 1e-4  # autocast really ran the matmuls in bf16 ...
    assert np.abs(a - b).mean() < 0.05 * np.abs(a).mean()  # ... whose 8-bit mantissa keeps logits within ~1%


def test_outputs_of_another_precision_are_not_mixed_into_a_folder(teacher, reviews, tmp_path):
    classify(teacher, reviews.head(8), tmp_path / "out", precision="fp32")
    with pytest.raises(NexaError, match="one output folder per teacher version"):
        classify(teacher, reviews, tmp_path / "out", precision="bf16")
    assert len(read_outputs(tmp_path / "out")) == 8  # nothing was added


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_unknown_precision_is_refused_with_the_field_named(teacher, reviews, tmp_path, precision):
    with pytest.raises(NexaError, match="distill.teacher_precision: .* is not one of auto, fp32, bf16"):
        classify(teacher, reviews, tmp_path / "out", precision=precision)
    assert not (tmp_path / "out").exists()


def test_auto_precision_is_fp32_on_cpu():
    from nexa_core.distill.precision import resolve_precision

    device, _, precision = resolve_precision("cpu", "auto")
    assert (device.type, precision) == ("cpu", "fp32")
