"""Reading an operator's files, with one wording for the same trouble in every command: `FILE: cannot read it
(...)`, `FILE: not UTF-8 text (byte N)`, `FILE: not JSON (... at line L, column C)`, `FILE: <what it must be>`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: str | Path, must_be: str, *, error: type[Exception] = ValueError,
                     label: str | None = None) -> dict[str, Any]:
    """The JSON object in the file at `path`; `error` naming the file (or `label`, e.g. "--env-vars FILE") and
    what is wrong when it cannot be read, is not UTF-8 or JSON, or is not an object (`must_be` says what it is:
    "a campaign definition is a JSON object")."""
    name = label or str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as failure:
        raise error(f"{name}: cannot read it ({failure.strerror or failure})") from None
    except UnicodeDecodeError as failure:
        raise error(f"{name}: not UTF-8 text (byte {failure.start})") from None
    except json.JSONDecodeError as failure:
        raise error(f"{name}: not JSON ({failure.msg} at line {failure.lineno}, column {failure.colno})") from None
    if not isinstance(data, dict):
        raise error(f"{name}: {must_be}")
    return data
