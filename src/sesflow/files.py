"""Reading and writing an operator's files, with one wording for the same trouble in every command: `FILE: cannot
read it (...)`, `FILE: not UTF-8 text (byte N)`, `FILE: empty`, `FILE: not JSON (... at line L, column C)`, `FILE:
<what it must be>, got <what it is>`, `FILE: cannot write it (...)`. Each raises errors.InputError (exit 2) unless
the caller names another error type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sesflow.errors import InputError


def read_text(path: str | Path, *, error: type[Exception] = InputError, label: str | None = None,
              encoding: str = "utf-8") -> str:
    """The file's text; `error` naming the file (or `label`) when it cannot be read or is not UTF-8."""
    name = label or str(path)
    try:
        return Path(path).read_text(encoding=encoding)
    except OSError as failure:
        raise error(f"{name}: cannot read it ({failure.strerror or failure})") from None
    except UnicodeDecodeError as failure:
        raise error(f"{name}: not UTF-8 text (byte {failure.start})") from None


def kind(value: Any) -> str:
    """What a JSON value is, in JSON's words: an object, a list, a string, a number, true/false, null."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def read_json_object(path: str | Path, must_be: str, *, error: type[Exception] = InputError,
                     label: str | None = None) -> dict[str, Any]:
    """The JSON object in the file at `path`; `error` naming the file (or `label`, e.g. "--env-vars FILE") and
    what is wrong when it cannot be read, is not UTF-8, is empty, is not JSON, or is not an object (`must_be` says
    what it is: "a campaign definition is a JSON object")."""
    name = label or str(path)
    text = read_text(path, error=error, label=label)
    if not text.strip():
        raise error(f"{name}: empty: {must_be}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as failure:
        raise error(f"{name}: not JSON ({failure.msg} at line {failure.lineno}, column {failure.colno})") from None
    if not isinstance(data, dict):
        raise error(f"{name}: {must_be}, got {kind(data)}")
    return data


def cannot_write(path: str | Path, failure: OSError) -> InputError:
    """The error for a file that cannot be written: `FILE: cannot write it (...)`."""
    return InputError(f"{path}: cannot write it ({failure.strerror or failure})")
