"""Teacher outputs for distillation: batched inference written as resumable, atomically written Parquet chunks.

One out_dir holds the outputs of ONE teacher version for every input partition. A run computes only the inputs
whose input_id is not in a finished chunk yet, so re-runs are incremental and a killed run resumes where its last
chunk ended. Chunks are `chunk-<seq>-<uuid8>.parquet`, written under a temporary name in the same folder and
renamed into place, so readers never see a partial chunk.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nexa_core.common.atomic import atomic_write_bytes
from nexa_core.common.errors import NexaError
from nexa_core.distill.precision import labels_version, resolve_precision

CHUNK_RE = re.compile(r"^chunk-(\d+)-([0-9a-f]{8})\.parquet$")

CLASSIFICATION_SCHEMA = pa.schema([
    ("input_id", pa.string()),
    ("topk_ids", pa.list_(pa.int64())),
    ("topk_logits", pa.list_(pa.float32())),
    ("predicted", pa.int64()),
    ("confidence", pa.float32()),
    ("teacher_version", pa.string()),
])
GENERATION_SCHEMA = pa.schema([
    ("input_id", pa.string()),
    ("completion", pa.string()),
    ("token_logprobs", pa.list_(pa.float32())),
    ("mean_logprob", pa.float32()),
    ("num_tokens", pa.int64()),
    ("teacher_version", pa.string()),
])


# --------------------------------------------------------------------------------------------------- versions
def teacher_version(model_dir: str | Path) -> str:
    """First 16 hex digits of sha256 over the weight files (sorted) and config.json: identifies the teacher."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise NexaError(f"teacher {model_dir}: not a model folder (no config.json); pass a saved model folder")
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("pytorch_model*.bin"))
    if not weights:
        raise NexaError(f"teacher {model_dir}: no weight files (*.safetensors); save the model with save_pretrained")
    digest = hashlib.sha256()
    for path in [*weights, model_dir / "config.json"]:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------- chunks
def _chunk_files(out_dir: Path) -> list[Path]:
    """Finished chunks in sequence order; temp files (`.chunk-...tmp`) never match."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p.name, p) for p in out_dir.iterdir() if (m := CHUNK_RE.match(p.name))]
    return [p for _, _, p in sorted(found)]


def _existing(out_dir: Path, version: str) -> tuple[set[str], int]:
    """input_ids already in out_dir and the next chunk sequence number; refuses a folder of another teacher."""
    done: set[str] = set()
    next_seq = 0
    for path in _chunk_files(out_dir):
        table = pq.read_table(path, columns=["input_id", "teacher_version"])
        versions = set(table.column("teacher_version").unique().to_pylist())
        if versions - {version}:
            raise NexaError(f"teacher outputs {out_dir}: {path.name} holds teacher version(s) "
                            f"{sorted(versions - {version})}, not {version}; use one output folder per teacher "
                            "version")
        done.update(table.column("input_id").to_pylist())
        next_seq = max(next_seq, int(CHUNK_RE.match(path.name).group(1)) + 1)
    return done, next_seq


def _write_chunk(out_dir: Path, seq: int, table: pa.Table) -> Path:
    """Serialise in memory, then write under a temp name in out_dir and rename: all of the chunk or nothing."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return atomic_write_bytes(out_dir / f"chunk-{seq:06d}-{uuid.uuid4().hex[:8]}.parquet", buffer.getvalue())


class _ChunkWriter:
    """Buffers rows (as column lists) and writes every `chunk_size` of them as one chunk."""

    def __init__(self, out_dir: Path, seq: int, chunk_size: int, schema: pa.Schema):
        self.out_dir, self.seq, self.chunk_size, self.schema = out_dir, seq, chunk_size, schema
        self.columns: dict[str, list] = {name: [] for name in schema.names}
        self.written = 0

    def add(self, **columns: list) -> None:
        for name, values in columns.items():
            self.columns[name].extend(values)
        while len(self.columns["input_id"]) >= self.chunk_size:
            self._flush(self.chunk_size)

    def close(self) -> None:
        if self.columns["input_id"]:
            self._flush(len(self.columns["input_id"]))

    def _flush(self, n: int) -> None:
        head = {name: values[:n] for name, values in self.columns.items()}
        self.columns = {name: values[n:] for name, values in self.columns.items()}
        _write_chunk(self.out_dir, self.seq, pa.Table.from_pydict(head, schema=self.schema))
        self.seq += 1
        self.written += 1


def read_outputs(out_dir: str | Path, input_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """All finished chunks of out_dir as one frame (first occurrence of an input_id wins), optionally only ids."""
    files = _chunk_files(Path(out_dir))
    if not files:
        return pd.DataFrame({"input_id": pd.Series([], dtype=object)})
    table = pa.concat_tables([pq.read_table(p) for p in files])
    if input_ids is not None:
        import pyarrow.compute as pc

        wanted = pa.array([str(i) for i in input_ids], type=pa.string())
        table = table.filter(pc.is_in(table.column("input_id"), value_set=wanted))
    frame = table.to_pandas()
    return frame.drop_duplicates("input_id", keep="first").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------- inputs
def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if value is None or value < 1:
            raise NexaError(f"{name}={value!r}: must be a positive integer")


def _pending(inputs: pd.DataFrame, done: set[str]) -> tuple[list[str], list[str], int]:
    missing = {"input_id", "text"} - set(inputs.columns)
    if missing:
        raise NexaError(f"teacher inputs: missing column(s) {sorted(missing)}; expected input_id and text")
    if inputs["text"].isna().any():
        raise NexaError(f"teacher inputs: {int(inputs['text'].isna().sum())} row(s) have no text; drop them first")
    ids = inputs["input_id"].astype(str).to_numpy()
    first = ~pd.Series(ids).duplicated().to_numpy()  # an id listed twice is computed once
    known = pd.Series(ids).isin(done).to_numpy()
    keep = first & ~known
    texts = inputs["text"].astype(str).to_numpy()
    return ids[keep].tolist(), texts[keep].tolist(), int((first & known).sum())


def _plan(model_dir: str | Path, inputs: pd.DataFrame, out_dir: str | Path, precision: str):
    """What is left to do: the outputs' version, the next chunk number and the inputs not labelled yet."""
    model_dir, out_dir = _check_model_dir(model_dir), Path(out_dir)
    version = labels_version(teacher_version(model_dir), precision)
    done, seq = _existing(out_dir, version)
    ids, texts, skipped = _pending(inputs, done)
    return model_dir, out_dir, version, seq, ids, texts, skipped


def _stats(computed: int, skipped: int, chunks: int, started: float, version: str, out_dir: Path,
           precision: str) -> dict:
    seconds = time.perf_counter() - started
    return {"computed": computed, "skipped": skipped, "chunks_written": chunks, "seconds": round(seconds, 4),
            "inputs_per_second": computed / seconds if computed and seconds > 0 else 0.0,
            "teacher_version": version, "out_dir": str(out_dir), "precision": precision}


MAX_PADDING = 0.1  # a length-sorted batch is cut early rather than pad more than 10% over its real tokens ...
MIN_CUT_TOKENS = 1024  # ... unless it is still this small (tiny batches cost more in overhead than padding)


def _length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices in ascending length, cut into batches of at most batch_size rows and little padding.

    Sorted batches of a fixed size still pad a lot in the long tail, where lengths spread out; there a batch is
    cut as soon as padding would exceed MAX_PADDING of its real tokens.
    """
    order = np.argsort(lengths, kind="stable")
    batches, start, real = [], 0, 0
    for pos, i in enumerate(order):
        width, rows = int(lengths[i]), pos - start + 1
        if pos > start and (rows > batch_size or (rows * width > (1 + MAX_PADDING) * (real + width)
                                                  and rows * width >= MIN_CUT_TOKENS)):
            batches.append(order[start:pos])
            start, real = pos, 0
        real += width
    if start < len(order):
        batches.append(order[start:])
    return batches


def _pad(rows: list[list[int]], value: int, left: bool) -> np.ndarray:
    width = max(map(len, rows))
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        if row:
            if left:
                out[i, width - len(row):] = row
            else:
                out[i, :len(row)] = row
    return out


def _check_model_dir(model_dir: str | Path) -> Path:
    from nexa_core.common.resolve import resolve_location

    path = Path(resolve_location(str(model_dir), "distill.teacher"))
    if not (path / "config.json").is_file():
        raise NexaError(f"distill.teacher: {path} is not a model folder (no config.json); pass a fine-tuned "
                        "model's final/ folder")
    return path


# -------------------------------------------------------------------------------------------- classification
def collect_classification(model_dir: str | Path, inputs: pd.DataFrame, out_dir: str | Path, *, top_k: int = 5,
                           batch_size: int = 64, max_length: int = 128, chunk_size: int = 512,
                           device: str | None = None, precision: str = "auto") -> dict:
    """Top-k logits, prediction and confidence of a sequence classifier for the inputs not yet in out_dir.

    All pending texts are tokenised in one fast-tokenizer call, sorted by token length and run in batches padded
    only to the longest row of each batch; on CPU (fp32) results match an unbatched forward to float rounding.
    device: a training.device value (auto, cpu, cuda, cuda:N; None = auto).
    precision (see precision.py): auto is bf16 on a GPU and fp32 on CPU; bf16 outputs carry their own version.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    _check_sizes(top_k=top_k, batch_size=batch_size, max_length=max_length, chunk_size=chunk_size)
    device, autocast, precision = resolve_precision(device, precision)
    model_dir, out_dir, version, seq, ids, texts, skipped = _plan(model_dir, inputs, out_dir, precision)
    if not ids:
        return _stats(0, skipped, 0, started, version, out_dir, precision)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
    k = min(top_k, model.config.num_labels)
    names = [n for n in tokenizer.model_input_names if n in ("input_ids", "token_type_ids", "attention_mask")]
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_attention_mask=False,
                        return_token_type_ids="token_type_ids" in names)
    token_ids = encoded["input_ids"]
    lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = tokenizer.padding_side == "left"
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _ChunkWriter(out_dir, seq, chunk_size, CLASSIFICATION_SCHEMA)
    with torch.inference_mode(), autocast():
        for idx in _length_batches(lengths, batch_size):
            rows = [token_ids[i] for i in idx]
            input_ids = _pad(rows, pad_id, left)
            batch = {"input_ids": torch.from_numpy(input_ids).to(device)}
            if input_ids.size != sum(map(len, rows)):  # padded rows need a mask; equal lengths run without one
                row_lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))[:, None]
                positions = np.arange(input_ids.shape[1])
                mask = positions >= input_ids.shape[1] - row_lengths if left else positions < row_lengths
                batch["attention_mask"] = torch.from_numpy(mask.astype(np.int64)).to(device)
            if "token_type_ids" in names:
                batch["token_type_ids"] = torch.from_numpy(
                    _pad([encoded["token_type_ids"][i] for i in idx], tokenizer.pad_token_type_id, left)).to(device)
            logits = model(**batch).logits.float()
            values, indices = torch.topk(logits, k, dim=-1)
            # Top-1 softmax probability over all classes: exp(max - logsumexp), no full softmax tensor.
            confidence = torch.exp(values[:, 0] - torch.logsumexp(logits, dim=-1))
            values, indices, confidence = values.cpu().numpy(), indices.cpu().numpy(), confidence.cpu().numpy()
            writer.add(input_id=[ids[i] for i in idx], topk_ids=list(indices), topk_logits=list(values),
                       predicted=indices[:, 0].tolist(), confidence=confidence.tolist(),
                       teacher_version=[version] * len(idx))
        writer.close()
    return _stats(len(ids), skipped, writer.written, started, version, out_dir, precision)


# -------------------------------------------------------------------------------------------------- generation
def collect_generation(model_dir: str | Path, inputs: pd.DataFrame, out_dir: str | Path, *, max_new_tokens: int = 64,
                       batch_size: int = 16, chunk_size: int = 512, max_length: int | None = None,
                       device: str | None = None, precision: str = "auto") -> dict:
    """Greedy completions of a causal LM with the log-probability of every generated token.

    The completion stops at the first end-of-sequence token, which is not part of it (nor of token_logprobs);
    an empty completion has num_tokens 0 and mean_logprob NaN.
    Log-probabilities come from the raw logits (log_softmax), not from logits processors.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    _check_sizes(max_new_tokens=max_new_tokens, batch_size=batch_size, chunk_size=chunk_size)
    device, autocast, precision = resolve_precision(device, precision)
    model_dir, out_dir, version, seq, ids, texts, skipped = _plan(model_dir, inputs, out_dir, precision)
    if not ids:
        return _stats(0, skipped, 0, started, version, out_dir, precision)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if not eos_ids and tokenizer.eos_token_id is not None:
        eos_ids = [tokenizer.eos_token_id]
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else (eos_ids or [0])[0]
    encoded = tokenizer(texts, truncation=max_length is not None, max_length=max_length,
                        return_attention_mask=False, add_special_tokens=True)["input_ids"]
    if any(len(row) == 0 for row in encoded):
        raise NexaError("teacher inputs: some prompts tokenise to nothing (empty text); drop them first")
    prompt_lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    eos_tensor = torch.tensor(eos_ids or [-1], device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _ChunkWriter(out_dir, seq, chunk_size, GENERATION_SCHEMA)
    with torch.inference_mode(), autocast():
        for idx in _length_batches(prompt_lengths, batch_size):
            rows = [encoded[i] for i in idx]
            input_ids = _pad(rows, pad_id, left=True)  # left padding: every prompt ends where generation starts
            row_lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            mask = np.arange(input_ids.shape[1]) >= input_ids.shape[1] - row_lengths[:, None]
            out = model.generate(input_ids=torch.from_numpy(input_ids).to(device),
                                 attention_mask=torch.from_numpy(mask.astype(np.int64)).to(device),
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=pad_id, eos_token_id=eos_ids or None,
                                 output_logits=True, return_dict_in_generate=True)
            generated = out.sequences[:, input_ids.shape[1]:]
            steps = generated.shape[1]
            if steps:
                # One step at a time: no batch x steps x vocab copy of the logits.
                logprobs = torch.stack([
                    step.float().gather(-1, generated[:, s:s + 1]).squeeze(-1) - torch.logsumexp(step.float(), dim=-1)
                    for s, step in enumerate(out.logits[:steps])], dim=1)
                is_eos = torch.isin(generated, eos_tensor)
                # Tokens before the first eos; everything after it is padding.
                first_eos = is_eos.int().argmax(1)
                counts = torch.where(is_eos.any(1), first_eos, torch.full_like(first_eos, steps))
            else:
                logprobs = torch.zeros((len(idx), 0))
                counts = torch.zeros(len(idx), dtype=torch.long)
            generated, logprobs, counts = generated.cpu().tolist(), logprobs.cpu().numpy(), counts.cpu().tolist()
            completions, token_lp, means = [], [], []
            for row, n in enumerate(counts):
                completions.append(tokenizer.decode(generated[row][:n], skip_special_tokens=True))
                lp = logprobs[row, :n].astype(np.float32)
                token_lp.append(lp)
                means.append(float(lp.mean()) if n else float("nan"))  # empty completion: no mean
            writer.add(input_id=[ids[i] for i in idx], completion=completions, token_logprobs=token_lp,
                       mean_logprob=means, num_tokens=counts, teacher_version=[version] * len(idx))
        writer.close()
    return _stats(len(ids), skipped, writer.written, started, version, out_dir, precision)
