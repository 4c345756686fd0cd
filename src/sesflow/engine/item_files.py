"""The items a Distributed Map's ItemReader reads from a CSV or a JSON Lines file, parsed as Step Functions parses
them, from a binary stream (an S3 object's body) a chunk at a time: memory holds one line and one chunk, whatever
the file's size.

CSV, as "How Step Functions parses input CSV files" (Step Functions developer guide) lists the rules:
- fields are separated by the ReaderConfig's CSVDelimiter (COMMA, PIPE, SEMICOLON, SPACE or TAB; COMMA by
  default), records by newlines (``\\n`` or ``\\r\\n``; a lone ``\\r`` is data);
- every field is a string;
- double quotes need not enclose a field, but a quoted part may hold the delimiter and newlines; a doubled quote
  is one quote, inside quotes or not (the guide's example parses ``{""MyKey"":""MyValue""}`` unquoted to
  ``{"MyKey":"MyValue"}``); ``""`` as a whole field is an empty field;
- a backslash escapes a backslash, a double quote or the delimiter; a backslash before any other character is
  removed;
- a row with fewer fields than the header gets empty strings for the missing ones; extra fields are skipped;
- the header (the first row, or the CSVHeaders given) is at most 10 KiB and has no duplicates.

JSON Lines: each line is one JSON value, an item of any JSON type.

What AWS does not document, the engine decides the strict way, so that a file it reads AWS reads too: a blank
JSON Lines line fails the read; bytes that are not UTF-8 fail it; a quote still open at the end of the file fails
it; a blank CSV line is a record of empty fields; a UTF-8 byte order mark is kept (it becomes part of the first
header's name).
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
CSV_HEADER_LIMIT_BYTES = 10 * 1024  # "Currently, Step Functions supports CSV headers of up to 10 KiB."
CHUNK_BYTES = 64 * 1024


class ItemFileError(Exception):
    """The file cannot be read as its ReaderConfig says; the message says where and why."""


@dataclass(frozen=True)
class ReaderSpec:
    """A ReaderConfig for a file of items: InputType CSV (with its header and delimiter) or JSONL."""

    input_type: str
    delimiter: str = ","
    header_location: str = "FIRST_ROW"
    headers: tuple[str, ...] = ()


def read_items(body: BinaryIO, spec: ReaderSpec, max_items: int) -> Iterator[Any]:
    """The file's items in file order, at most `max_items` of them; the file is read as the items are taken. A CSV
    header is read and checked before this returns, so a bad header fails before any item is used."""
    lines = _lines(body)
    if spec.input_type == "JSONL":
        return itertools.islice(_jsonl_items(lines), max_items)
    records = _csv_records(lines, spec.delimiter)
    if spec.header_location == "FIRST_ROW":
        first = next(records, None)
        headers = tuple(first[1]) if first is not None else ()
    else:
        headers = spec.headers
    check_headers(headers, spec.delimiter)
    return itertools.islice(_csv_items(records, headers), max_items)


def check_headers(headers: tuple[str, ...], delimiter: str) -> None:
    size = len(delimiter.join(headers).encode())
    if size > CSV_HEADER_LIMIT_BYTES:
        raise ItemFileError(f"The CSV header is {size:,} bytes; Step Functions supports CSV headers of up to "
                            f"{CSV_HEADER_LIMIT_BYTES:,} bytes (10 KiB).")
    seen: set[str] = set()
    duplicates = [h for h in headers if h in seen or seen.add(h)]
    if duplicates:
        raise ItemFileError("CSV headers cannot contain duplicates. Repeated: "
                            + ", ".join(repr(h) for h in dict.fromkeys(duplicates)))


def _lines(body: BinaryIO) -> Iterator[tuple[int, str]]:
    """(line number from 1, the line's text with its "\\n"), decoding UTF-8 a chunk at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, number, offset = "", 1, 0
    while True:
        raw = body.read(CHUNK_BYTES)
        buffered = len(decoder.getstate()[0])
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as error:
            at = offset - buffered + error.start
            line = number + pending.count("\n") + raw[:max(error.start - buffered, 0)].count(b"\n")
            raise ItemFileError(f"line {line}: byte {at:,} of the file is not UTF-8 ({error.reason})") from None
        offset += len(raw)
        if text:
            parts = (pending + text).split("\n")
            pending = parts.pop()
            for part in parts:
                yield number, part + "\n"
                number += 1
        if not raw:
            if pending:
                yield number, pending
            return


def _jsonl_items(lines: Iterator[tuple[int, str]]) -> Iterator[Any]:
    for number, text in lines:
        if not text.strip():
            raise ItemFileError(f"line {number} is blank; each line of a JSON Lines file is one JSON value")
        try:
            yield json.loads(text, parse_constant=_not_json)
        except ValueError as error:
            detail = f"{error.msg} at column {error.colno}" if isinstance(error, json.JSONDecodeError) else error
            raise ItemFileError(f"line {number} is not JSON: {detail}") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _csv_items(records: Iterator[tuple[int, list[str]]], headers: tuple[str, ...]) -> Iterator[dict[str, str]]:
    width = len(headers)
    for _, fields in records:
        if len(fields) < width:
            fields.extend([""] * (width - len(fields)))
        yield dict(zip(headers, fields, strict=False))  # a row's extra fields are skipped


def _csv_records(lines: Iterator[tuple[int, str]], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its fields), by the rules in the module's docstring."""
    special = re.compile("[" + re.escape('"\\\r\n' + delimiter) + "]")
    ends_empty_quotes = ("", delimiter, "\n", "\r")
    fields: list[str] = []
    field: list[str] = []
    quoted = touched = False  # inside quotes; the current field has begun (content or a quote)
    start = None
    for number, text in lines:
        if start is None:
            start = number
        if not quoted and '"' not in text and "\\" not in text:  # a record on one line, nothing to unescape
            record = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
            yield start, record.split(delimiter)
            start = None
            continue
        pos, size = 0, len(text)
        while pos < size:
            found = special.search(text, pos)
            if found is None:
                field.append(text[pos:])
                touched = True
                break
            at = found.start()
            if at > pos:
                field.append(text[pos:at])
                touched = True
            char = text[at]
            if char == "\\":
                escaped = text[at + 1:at + 2]
                if escaped and escaped in ('\\', '"', delimiter):
                    field.append(escaped)
                    touched = True
                    pos = at + 2
                else:
                    pos = at + 1  # a backslash before anything else is removed
            elif char == '"':
                if text.startswith('""', at):
                    if not (quoted or touched) and text[at + 2:at + 3] in ends_empty_quotes:
                        touched = True  # "" as a whole field: an empty field
                    else:
                        field.append('"')
                        touched = True
                    pos = at + 2
                else:
                    quoted = not quoted
                    touched = True
                    pos = at + 1
            elif quoted or (char == "\r" and not text.startswith("\r\n", at)):
                field.append(char)
                touched = True
                pos = at + 1
            elif char == delimiter:
                fields.append("".join(field))
                field, touched = [], False
                pos = at + 1
            elif char == "\r":
                pos = at + 1  # the "\n" after it ends the record
            else:  # "\n"
                fields.append("".join(field))
                yield start, fields
                fields, field, touched, start = [], [], False, None
                pos = at + 1
    if quoted:
        raise ItemFileError(f"line {start}: a quoted field is still open at the end of the file")
    if fields or touched:
        fields.append("".join(field))
        yield start, fields
