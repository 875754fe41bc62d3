"""Generated bad recipes and data files through `nexa prepare` and `nexa train` (main() in this process): each is
refused with exit 2 and exactly one stderr line naming the field or the file's line, no traceback, and the storage
tree (and every other file of the example) exactly as before.

Every generated case is invalid by construction: a value of a type no field of that kind accepts, a number outside
a bound the config declares, a key no section has, a recipe that is not UTF-8, or a data file that is malformed at
a known line. derandomize=True: CI runs the same examples every time; no example database is written.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_helpers import nexa_in_process, tree
from tests.conftest import tiny_recipe

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
commands = st.sampled_from(["prepare", "train"])

# ---------------------------------------------------------------------------------------------------- recipes

# Scalar fields (numbers, booleans, strings): a list or a mapping is never one of them.
SCALARS = ["name", "model.max_length", "model.name_or_path", "data.text_column", "data.encoding",
           "data.validation_fraction", "training.epochs", "training.batch_size", "training.precision", "training.device",
           "training.group_by_length", "training.optimizer.lr", "training.schedule.name",
           "training.distributed.world_size", "training.checkpoint.keep", "evaluation.batch_size", "distill.top_k",
           "telemetry.interval_s", "storage.scratch"]
# Numeric fields with a bound, and numbers on the wrong side of it.
_NEG = st.floats(max_value=0, allow_nan=False)
_NON_FINITE = st.sampled_from([math.inf, -math.inf, math.nan])
OUT_OF_RANGE = {
    "model.max_length": st.one_of(st.integers(max_value=7), st.integers(min_value=8193)),
    "data.validation_fraction": st.one_of(st.floats(min_value=0.5, allow_nan=False), _NEG, _NON_FINITE),
    "data.max_samples": st.integers(max_value=0),
    "training.epochs": st.one_of(_NEG, _NON_FINITE),
    "training.batch_size": st.integers(max_value=0),
    "training.max_steps": st.integers(max_value=-2),
    "training.optimizer.lr": st.one_of(_NEG, st.floats(min_value=1, exclude_min=True, allow_nan=False), _NON_FINITE),
    "training.schedule.warmup_ratio": st.one_of(st.floats(min_value=1, allow_nan=False),
                                                st.floats(max_value=0, exclude_max=True, allow_nan=False)),
    "training.distributed.world_size": st.integers(max_value=0),
    "training.checkpoint.keep": st.integers(max_value=0),
    "evaluation.thresholds.accuracy": st.one_of(st.floats(min_value=1, exclude_min=True, allow_nan=False),
                                                st.floats(max_value=0, exclude_max=True, allow_nan=False)),
    "telemetry.interval_s": st.one_of(st.floats(max_value=0.049, allow_nan=False), st.floats(min_value=3601)),
}
SECTIONS = ["", "data", "model", "training", "training.optimizer", "evaluation", "distill", "telemetry", "storage"]
_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).map(lambda s: f"x{s}")


def _set(recipe: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = recipe
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


@st.composite
def bad_recipes(draw) -> tuple[str, object, bytes | None]:
    """(a dotted field the refusal must name, its value or None, recipe bytes to write instead of YAML or None)."""
    kind = draw(st.sampled_from(["type", "range", "unknown", "encoding"]))
    if kind == "type":
        field = draw(st.sampled_from(SCALARS))
        value = draw(st.one_of(st.lists(st.integers(), max_size=3),
                               st.dictionaries(st.sampled_from("xyz"), st.integers(), min_size=1, max_size=2)))
        return field, value, None
    if kind == "range":
        field = draw(st.sampled_from(sorted(OUT_OF_RANGE)))
        return field, draw(OUT_OF_RANGE[field]), None
    if kind == "unknown":
        section = draw(st.sampled_from(SECTIONS))
        return ".".join(filter(None, [section, draw(_KEY)])), draw(st.integers() | st.text(max_size=5)), None
    codec = draw(st.sampled_from(["latin-1", "cp1252", "utf-16"]))
    return "--config", None, codec.encode()  # the recipe is written in this codec, with a non-ASCII comment


def _write_recipe(root: Path, recipe: dict, field: str, value, codec: bytes | None) -> Path:
    path = root / "recipe.yaml"
    if codec:
        path.write_bytes(("# café, naïve\n" + yaml.safe_dump(recipe)).encode(codec.decode()))
    else:
        _set(recipe, field, value)
        path.write_text(yaml.safe_dump(recipe))
    return path


# ------------------------------------------------------------------------------------------------- data files


def _rows(tiny_csv) -> tuple[list[str], list[list[str]]]:
    with open(tiny_csv, newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


@st.composite
def bad_data(draw, header: list[str], rows: list[list[str]]) -> tuple[str, bytes, str]:
    """(file name, bytes, what the refusal must say)."""
    kind = draw(st.sampled_from(["json_line", "json_nested", "extra_field", "encoding", "column", "one_class",
                                 "empty"]))
    i = draw(st.integers(0, len(rows) - 1))
    records = [dict(zip(header, r)) for r in rows]
    if kind == "json_line":
        lines = [json.dumps(r) for r in records]
        lines[i] = draw(st.sampled_from(["{", "not json", "[1, 2]", "42", '"text"', '{"review": ']))
        return "data.jsonl", "\n".join(lines).encode(), f"line {i + 1}"
    if kind == "json_nested":
        column = draw(st.sampled_from(header))
        records[i][column] = draw(st.sampled_from([{"a": 1}, [], ["x", 1], {"text": "nested"}]))
        return "data.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode(), f"line {i + 1}: {column!r}"
    if kind == "extra_field":
        sep = draw(st.sampled_from([",", "\t"]))
        lines = [sep.join(header), *(sep.join(r) for r in rows)]
        lines[i + 1] += sep + "extra"
        return ("data.csv" if sep == "," else "data.tsv"), ("\n".join(lines) + "\n").encode(), f"at line {i + 2}"
    if kind == "encoding":  # every text in latin-1 with a non-ASCII letter, read as UTF-8: none decodes
        lines = [",".join(header), *(f"{t} café,{label}" for t, label in rows)]
        return "data.csv", "\n".join(lines).encode("latin-1"), "data.encoding"
    if kind == "column":
        lines = [",".join(["text", header[1]]), *(",".join(r) for r in rows)]
        return "data.csv", "\n".join(lines).encode(), "data.text_column"
    if kind == "one_class":
        lines = [",".join(header), *(f"{t},{rows[0][1]}" for t, _ in rows)]
        return "data.csv", "\n".join(lines).encode(), "1 class(es)"
    return "data.csv", b"", "is empty"


# ------------------------------------------------------------------------------------------------------ checks


def _assert_refused(root: Path, *args: str) -> str:
    before = tree(root)
    code, stdout, stderr = nexa_in_process(*args)  # an uncaught exception fails the test with its traceback
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, (code, stderr)
    assert not stdout
    assert tree(root) == before
    return lines[0]


@SETTINGS
@given(command=commands, case=bad_recipes())
def test_generated_bad_recipes_are_refused_in_one_line(tiny_model, tiny_csv, command, case):
    field, value, codec = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = _write_recipe(root, tiny_recipe(tiny_model, tiny_csv, root), field, value, codec)
        line = _assert_refused(root, command, "--config", str(path))
    assert line.startswith(f"nexa {command}: error: ")
    # A mapping's own check (evaluation.thresholds) names the mapping and the offending key inside it.
    named = field in line or (field.rpartition(".")[0] + ":" in line and field.rpartition(".")[2] in line)
    assert ("not UTF-8" in line) if codec else named, line


@SETTINGS
@given(command=commands, data=st.data())
def test_generated_bad_data_files_are_refused_in_one_line(tiny_model, tiny_csv, command, data):
    header, rows = _rows(tiny_csv)
    name, content, expected = data.draw(bad_data(header, rows))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / name).write_bytes(content)
        recipe = tiny_recipe(tiny_model, root / name, root)
        path = root / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        line = _assert_refused(root, command, "--config", str(path))
    assert expected in line and str(root / name) in line, line
