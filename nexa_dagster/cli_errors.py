"""Bad input given to the dagster CLI (`dagster job execute`, `dg launch`) is one line on stderr and exit 2.

Dagster's CLI lets two kinds of bad input escape as a traceback: run config that does not match the schema
(DagsterInvalidConfigError, raised before the run exists; 70-90 lines, and for an unknown key the error line
holds the whole section's schema, ~1000 characters) and a recipe that cannot be loaded (NEXA_CONFIG missing or
invalid: a NexaError inside the code location's load error; ~190 lines). Neither is a bug in the code, so the
hook that `nexa_dagster.definitions` installs prints the key, what is wrong and the fix instead. Every other
exception keeps Python's traceback, and the UI, the daemon and code servers (which catch these errors
themselves) are unaffected.
"""

from __future__ import annotations

import atexit
import difflib
import os
import re
import sys

import dagster as dg

from nexa_core.common.errors import NexaError

_EXPECTED = re.compile(r'\. Expected: ".*$', re.S)  # dagster appends the section's whole schema after this
_KEY = re.compile(r"[{}]|(\w+)\??:")


def install() -> None:
    previous = sys.excepthook
    if getattr(previous, "nexa_one_line", False):
        return

    def hook(exc_type, exc, tb):
        line = one_line(exc)
        if line is None:
            return previous(exc_type, exc, tb)
        print(f"error: {line}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()  # what a normal exit would run; os._exit is the only way to say 2 from a hook
        os._exit(2)

    hook.nexa_one_line = True
    sys.excepthook = hook


def one_line(exc: BaseException) -> str | None:
    """The one-line message for bad input (run config or recipe), or None for anything else."""
    if isinstance(exc, dg.DagsterInvalidConfigError):
        where = str(exc).splitlines()[0]  # "Error in config for job training_pipeline"
        details = "; ".join(_describe(error) for error in exc.errors)
        return f"{where.replace('Error in config', 'bad run config')}: {details}"
    seen = set()
    while exc is not None and id(exc) not in seen:  # a NexaError inside dagster's load or config-mapping error
        if isinstance(exc, NexaError):
            return str(exc)
        seen.add(id(exc))
        # The chain Python itself would print: the cause, else the context unless `from None` hid it.
        exc = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__
    return None


def _describe(error) -> str:
    path, data, reason = _path(error.stack), error.error_data, error.reason.name
    if reason == "FIELD_NOT_DEFINED":
        return f"{path}: unknown key {data.field_name!r}{_suggest([data.field_name], _keys(error.message))}"
    if reason == "FIELDS_NOT_DEFINED":
        names = ", ".join(map(repr, data.field_names))
        return f"{path}: unknown keys {names}{_suggest(data.field_names, _keys(error.message))}"
    if reason == "RUNTIME_TYPE_MISMATCH":
        kind = data.config_type_snap.kind.value.lower()
        expected = data.config_type_snap.given_name or ("mapping" if "shape" in kind or kind == "map" else
                                                        "list" if kind == "array" else kind)
        return f"{path}: {data.value_rep} is not a valid {expected}; give a {expected}"
    if reason == "MISSING_REQUIRED_FIELD":
        return f"{path}: required key {data.field_name!r} is missing; add it"
    if reason == "MISSING_REQUIRED_FIELDS":
        return f"{path}: required keys {', '.join(map(repr, data.field_names))} are missing; add them"
    return f"{path}: {_EXPECTED.sub('', error.message).splitlines()[0]}"


def _path(stack) -> str:
    parts = []
    for entry in stack.entries:
        if hasattr(entry, "field_name"):
            parts.append(entry.field_name)
        elif hasattr(entry, "list_index"):
            parts.append(f"[{entry.list_index}]")
        elif hasattr(entry, "map_key"):
            parts.append(str(entry.map_key))
    return ".".join(parts).replace(".[", "[") or "run config"


def _keys(message: str) -> list[str]:
    """The keys at the top of the schema dagster printed after "Expected:" (read here, never shown whole)."""
    match = _EXPECTED.search(message)
    expected = match.group(0) if match else ""
    if expected.startswith('. Expected: "['):  # several unknown keys: dagster lists the known ones
        return re.findall(r"'(\w+)'", expected)
    depth, keys = 0, []
    for token in _KEY.finditer(expected):
        if token.group(0) == "{":
            depth += 1
        elif token.group(0) == "}":
            depth -= 1
        elif depth == 1:
            keys.append(token.group(1))
    return keys


def _suggest(names, keys: list[str]) -> str:
    close = [match for name in names for match in difflib.get_close_matches(name, keys, n=1)]
    if close:
        return f"; did you mean {', '.join(map(repr, close))}?"
    if keys:
        listed = ", ".join(keys)
        return f"; the keys here are {listed if len(listed) <= 200 else listed[:200] + ', ...'}"
    return "; remove it"
