"""Read the raw training data named by `data.path` (file or folder) or `data.name` (datasets hub) into a DataFrame.

Every problem a user can fix (missing file, unknown format, bad encoding, malformed rows, unreachable hub)
becomes a one-line NexaError that names the file and says what to do.

Text files are decoded with `data.encoding`. A record holding bytes that do not decode is left out, and the
number left out travels with the frame (`undecodable_rows`) so cleaning counts it as `bad_encoding`; real
scraped corpora have a few such rows. A file where more than half the records (or the header) do not decode
is in another encoding, and is refused rather than trained on a remnant.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pandas as pd

from nexa_core.common.errors import NexaError
from nexa_core.common.resolve import resolve_location
from nexa_core.config import DataConfig

# Format by the suffix before any compression suffix; `.json` is read as JSON lines (or one JSON array).
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {".gz": gzip.decompress, ".bz2": bz2.decompress}
SUPPORTED = ".csv, .tsv, .jsonl, .json (JSON lines), .parquet; text formats may be compressed as .gz or .bz2"
# Bytes that do not decode become lone surrogates (Python's "surrogateescape"), which a strict decode never
# yields, so a record is undecodable exactly when one of its strings holds one. (A JSON `\udcXX` escape gives
# a lone surrogate too: equally not text that pyarrow can store.)
_UNDECODABLE = re.compile(r"[\ud800-\udfff]")
_UNDECODABLE_ROWS = "nexa_undecodable_rows"  # DataFrame.attrs key: pandas' place for dataset-level metadata
MAX_UNDECODABLE_FRACTION = 0.5  # a file with more undecodable records than this is in another encoding


def undecodable_rows(frame: pd.DataFrame) -> int:
    """How many records the loader left out of `frame` because their bytes did not decode."""
    return int(frame.attrs.get(_UNDECODABLE_ROWS, 0))


def raw_row_count(frame: pd.DataFrame) -> int:
    """Records read from the source, including those left out as undecodable."""
    return len(frame) + undecodable_rows(frame)


def describe_source(cfg: DataConfig) -> str:
    """A short human-readable name of where the data came from, for error messages and dataset.json."""
    if cfg.path:
        return cfg.path
    return f"hub:{cfg.name}" + (f"/{cfg.config}" if cfg.config else "") + f"[{cfg.split}]"


def load_raw(cfg: DataConfig) -> pd.DataFrame:
    """Return the raw rows with their original columns; cleaning and column selection happen later."""
    if not cfg.path:
        return _load_hub(cfg)
    path = Path(resolve_location(cfg.path, "data.path")).expanduser()
    if not path.exists():
        raise NexaError(f"data.path: {path} does not exist; point data.path at a data file or a folder of them")
    columns = (cfg.text_column, cfg.label_column)
    if path.is_dir():
        return _load_folder(path, cfg.encoding, columns)
    return _load_file(path, cfg.encoding, columns)


def load_file(path: Path, encoding: str = "utf-8", columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """One data file (a data drop), with the same format detection and one-line errors as `data.path`.
    `columns`: those that must hold plain values (text and label), checked in JSON records."""
    return _load_file(Path(path), encoding, columns)


def detect_format(name: str) -> Optional[str]:
    """The format a file name would be read as, or None if unsupported."""
    detected = _detect(Path(name))
    return detected[0] if detected else None


def _detect(path: Path) -> Optional[tuple[str, Optional[str]]]:
    """(format, compression suffix) for a supported file name, else None."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in _DECOMPRESS else None
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    # Parquet compresses internally; a `.parquet.gz` would need unpacking first.
    if fmt is None or (fmt == "parquet" and compression):
        return None
    return fmt, compression


def folder_files(folder: Path) -> list[Path]:
    """The data files a folder source is read from, in order."""
    # Hidden and `_`-prefixed files are tool droppings (.DS_Store, _SUCCESS), never data.
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")) and _detect(p))


def _load_folder(folder: Path, encoding: str, columns: tuple[str, ...]) -> pd.DataFrame:
    files = folder_files(folder)
    if not files:
        raise NexaError(
            f"data.path: folder {folder} has no data files (supported: {SUPPORTED}); add files or fix the path"
        )
    frames = [_load_file(p, encoding, columns) for p in files]
    # Rows from a file that lacks a column would silently become "empty" rows later, so insist on one layout.
    first = list(frames[0].columns)
    for path, frame in zip(files[1:], frames[1:]):
        if set(frame.columns) != set(first):
            raise NexaError(
                f"data.path: {path.name} has columns {sorted(frame.columns)} but {files[0].name} has {sorted(first)}; "
                f"every file in {folder} must have the same columns"
            )
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs[_UNDECODABLE_ROWS] = sum(undecodable_rows(frame) for frame in frames)
    return combined


def _load_file(path: Path, encoding: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    detected = _detect(path)
    if detected is None:
        raise NexaError(f"data.path: {path} has an unsupported format; use one of {SUPPORTED}")
    fmt, compression = detected
    if fmt == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
            raise NexaError(f"data.path: {path} is not a readable Parquet file ({err}); re-export it") from None
    data = _read_bytes(path, compression)
    if fmt == "jsonl":
        frame, bad = _json_frame(path, _decode(path, data, encoding, compression), columns)
    else:
        frame, bad = _csv_frame(path, data, encoding, compression, sep="\t" if fmt == "tsv" else ",")
    total = len(frame) + bad
    if bad > MAX_UNDECODABLE_FRACTION * total:
        raise _encoding_error(path, data, encoding, compression, f"in {bad} of {total} records")
    frame.attrs[_UNDECODABLE_ROWS] = bad
    return frame


def _csv_frame(path: Path, data: bytes, encoding: str, compression: Optional[str], sep: str):
    """(rows that decode, as strings; how many did not)."""
    frame = _parse_csv(path, data, encoding, compression, sep)
    if any(_UNDECODABLE.search(str(column)) for column in frame.columns):  # where the index is not pyarrow's
        raise _encoding_error(path, data, encoding, compression, "in its header")
    # Parsed as objects, which hold undecodable strings as they are; the `str` dtype (pyarrow) cannot.
    bad = pd.Series(False, index=frame.index)
    for column in frame.columns:
        bad |= frame[column].str.contains(_UNDECODABLE, na=False)
    return frame[~bad].reset_index(drop=True).astype(str), int(bad.sum())  # astype: as `dtype=str` reads


def _json_frame(path: Path, text: str, columns: tuple[str, ...] = ()):
    """(records that decode; how many did not)."""
    records = _parse_json_lines(path, text, columns)
    kept = [record for record in records
            if not any(isinstance(s, str) and _UNDECODABLE.search(s) for pair in record.items() for s in pair)]
    return pd.DataFrame.from_records(kept), len(records) - len(kept)


def _read_bytes(path: Path, compression: Optional[str]) -> bytes:
    data = path.read_bytes()
    if compression:
        try:
            data = _DECOMPRESS[compression](data)
        except (OSError, EOFError, ValueError) as err:
            raise NexaError(f"data.path: {path} could not be decompressed as {compression} ({err})") from None
    return data


def _codec(encoding: str) -> str:
    # utf-8-sig also drops a leading BOM (Excel writes one); for any other codec the name is used as given.
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _decode(path: Path, data: bytes, encoding: str, compression: Optional[str]) -> str:
    try:
        return data.decode(_codec(encoding), "surrogateescape")
    except UnicodeDecodeError:  # bytes below 0x80 that the codec rejects (e.g. utf-16) cannot be escaped
        raise _encoding_error(path, data, encoding, compression, "in bytes it cannot skip") from None


def _encoding_error(path: Path, data: bytes, encoding: str, compression: Optional[str], share: str) -> NexaError:
    """The one-line refusal of a file that is mostly (or in its header) not in `data.encoding`."""
    name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
    where = ""
    try:
        data.decode(_codec(encoding))
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        where = f" at byte {err.start}{' of the decompressed data' if compression else ''} (line {line})"
    return NexaError(
        f"data.encoding: {path} is not valid {name}{where}, {share} (up to {MAX_UNDECODABLE_FRACTION:.0%} of "
        "records may be undecodable: they are dropped as bad_encoding); set data.encoding to the file's encoding "
        f"(e.g. latin-1) or re-encode it, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed{''.join(path.suffixes)}`"
    )


def _parse_csv(path: Path, data: bytes, encoding: str, compression: Optional[str], sep: str) -> pd.DataFrame:
    try:
        # Everything as strings and only empty fields as missing: a review reading "NA" or "null" stays text.
        frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype=object, keep_default_na=False, na_values=[""],
                            encoding=_codec(encoding), encoding_errors="surrogateescape")
    except UnicodeDecodeError:  # bytes below 0x80 that the codec rejects (e.g. utf-16) cannot be escaped
        raise _encoding_error(path, data, encoding, compression, "in bytes it cannot skip") from None
    except UnicodeEncodeError:  # column names go into a pyarrow `str` index, which refuses undecodable ones
        raise _encoding_error(path, data, encoding, compression, "in its header") from None
    except pd.errors.EmptyDataError:
        raise NexaError(f"data.path: {path} is empty; it needs a header row and data rows") from None
    except pd.errors.ParserError as err:
        match = re.search(r"line (\d+)", str(err))
        where = f" at line {match.group(1)}" if match else ""
        raise NexaError(
            f"data.path: {path} is malformed{where} ({err}); check quoting and the number of fields per row"
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas reads a first data row with more fields than the header as an index column and shifts every
        # column by one (the labels become that row's extra field); it raises only for later rows.
        fields = len(frame.columns) + frame.index.nlevels
        raise NexaError(f"data.path: {path} is malformed at line {_first_data_line(data)} (expected "
                        f"{len(frame.columns)} fields as in the header, saw {fields}); check quoting and the "
                        "number of fields per row")
    return frame


def _first_data_line(data: bytes) -> int:
    """The line number of the first row after the header (pandas skips blank lines before and between them)."""
    rows = (number for number, line in enumerate(data.splitlines(), 1) if line.strip())
    next(rows, None)
    return next(rows, 2)


def _parse_json_lines(path: Path, text: str, columns: tuple[str, ...] = ()) -> list[dict]:
    # Parsed here rather than by pandas so a bad record is reported with its line number.
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise NexaError(f"data.path: {path} is not valid JSON at line {err.lineno} ({err.msg})") from None
        except RecursionError:  # the json module recurses once per nesting level
            raise NexaError(f"data.path: {path} is nested too deeply to be records; each record must be a flat "
                            "{...} object") from None
        numbered = list(enumerate(records, 1))
        unit = "item"
    else:
        numbered = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                numbered.append((lineno, json.loads(line)))
            except json.JSONDecodeError as err:
                raise NexaError(
                    f"data.path: {path} line {lineno} is not valid JSON ({err.msg}, column {err.colno}); "
                    "each line must be one JSON object"
                ) from None
            except RecursionError:
                raise NexaError(f"data.path: {path} line {lineno} is nested too deeply to be a record; each line "
                                "must be one flat JSON object") from None
        unit = "line"
    for number, record in numbered:
        if not isinstance(record, dict):
            raise NexaError(f"data.path: {path} {unit} {number} is not a JSON object; each record must be {{...}}")
        # Malformed like a record that is not an object (another export's layout), so refused the same way rather
        # than dropped: str() would turn it into training text such as "{'a': 1}".
        nested = next((c for c in columns if isinstance(record.get(c), (dict, list))), None)
        if nested is not None:
            kind = "an object" if isinstance(record[nested], dict) else "a list"
            raise NexaError(f"data.path: {path} {unit} {number}: {nested!r} is {kind}, not a string or number; "
                            f"each record's text and label must be plain values (check data.text_column and "
                            "data.label_column)")
    return [record for _, record in numbered]


def _load_hub(cfg: DataConfig) -> pd.DataFrame:
    label = f"{cfg.name}/{cfg.config}" if cfg.config else str(cfg.name)
    try:
        import datasets  # imported lazily: it is slow to import and only needed for hub sources

        ds = datasets.load_dataset(cfg.name, cfg.config, split=cfg.split)
        df = ds.to_pandas()
        feature = ds.features.get(cfg.label_column)
    except Exception as err:  # network, auth, unknown dataset/config/split: all fixable the same way
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        raise NexaError(
            f"data.name: could not load {label} (split {cfg.split}) from the hub ({detail}); "
            "set data.path to a local file instead"
        ) from None
    if isinstance(feature, datasets.ClassLabel):
        # Class ids become their names so stored labels are readable; ids outside the names (-1 on unlabelled
        # test splits) become missing and are dropped as missing_label.
        names = feature.names
        df[cfg.label_column] = [names[i] if isinstance(i, int) and 0 <= i < len(names) else None
                                for i in df[cfg.label_column].tolist()]
    return df
