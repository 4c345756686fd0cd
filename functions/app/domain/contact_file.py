"""Contacts files for `sesflow contacts import FILE --list NAME`: read a row at a time, in constant memory.

Pure: no AWS, no environment. Two layers, so that the CLI (reading a local file) and the import workflow's Lambda
(given batches of rows) check each row the same way:

    open_contacts(path) -> ContactFile   the file-level reader: detects the format, checks the header, and yields
                                         Record(line, fields) per row (fields keyed by the file's own column
                                         names), or a RowProblem for a row it cannot split into fields. Raises
                                         ContactFileError for what makes the whole file unusable.
    parse_row(fields, line)              one row's normalized address and attributes: ContactRow | RowProblem.
    read_rows(path)                      both, for a caller that needs no records.
    merge(rows)                          one ContactRow per address of a chunk.
    RejectsWriter / write_rejects        the rows refused, as CSV (`<file>.rejects.csv`, see rejects_path).

Formats. CSV with a header line, or JSON Lines (one object per line), chosen by the extension (.jsonl, .ndjson)
or else by the first non-blank character (`{`). UTF-8, with or without a byte-order mark. The CSV delimiter is
whichever of comma, semicolon and tab splits the header line into the most fields (comma on a tie). A quoted CSV
field may span lines; a row's line is the physical line where it starts. Blank lines (and CSV rows whose cells
are all blank) are skipped.

Columns. The address is the column (or JSON field) named email, address, e-mail, email address, email_address or
emailaddress, in any case. Every other column is an attribute, named by its header trimmed, lower-cased, with
spaces and dashes as underscores (`First Name` -> `first_name`); the name must match campaign.ATTRIBUTE_NAME and
must not be one of sesflow's own fields (campaign.RESERVED_CONTACT_FIELDS). A header breaking either rule, or two
columns becoming one name, refuses the file. A JSON Lines row is held to the same rules on its own keys.

Values. A CSV cell is a string; a JSON value a string, number or true/false; null, an empty string and a blank
cell are no value (an import leaves that attribute as it was); strings are trimmed. A JSON object or list is a
row problem naming its field, as is a number DynamoDB cannot store.

Limits, each found before it costs memory: a physical line, or a CSV row spanning lines, of at most 1 MiB
(MAX_LINE_BYTES); at most 1,000 columns (MAX_COLUMNS) in the header or in any row; a row's attributes of at most
350 KB (MAX_ATTRIBUTE_BYTES, as DynamoDB sizes them: a DynamoDB item holds at most 400 KB, and the rest is left
for the address and sesflow's own fields). Memory is bounded by one line and one row, whatever the file's size.

File-level problems raise ContactFileError as `<file>: line N: what is wrong`; they can sit on any line, so a
caller that must write nothing for a bad file reads it through once (check_file) before importing it. A row
problem never quotes the row's address (it may be logged); the rejects file has the row as it was.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, BinaryIO, NoReturn, TextIO

from app.domain.addresses import InvalidAddress, normalize
from app.domain.campaign import ATTRIBUTE_NAME, RESERVED_CONTACT_FIELDS
from app.errors import ContactFileError

MAX_LINE_BYTES = 1024 * 1024  # one physical line, or one CSV row over several lines (its line endings included)
MAX_COLUMNS = 1000
# A DynamoDB item is at most 400 KB (names and values, UTF-8); the address, the lifecycle and the import's own
# fields take far less than the 50 KB left.
MAX_ATTRIBUTE_BYTES = 350 * 1024
# Columns `sesflow contacts export` writes besides the attributes: read back as nothing (an import never sets a
# status or a subscription), so an export imports again; the summary names them (ContactFile.ignored_columns).
IGNORED_COLUMNS = frozenset({"status", "lists"})
ADDRESS_COLUMNS = frozenset({"email", "address", "e_mail", "email_address", "emailaddress"})
DELIMITERS = (",", ";", "\t")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
CSV, JSON_LINES = "csv", "jsonl"
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = {b"\xff\xfe": "FF FE", b"\xfe\xff": "FE FF"}
_QUOTED = re.compile(r'"[^"]*"')
# DynamoDB numbers: at most 38 significant digits, magnitude 1E-130 to 9.99...E+125 (or zero).
_NUMBER_DIGITS, _NUMBER_MIN_EXPONENT, _NUMBER_MAX_EXPONENT = 38, -130, 125
Value = str | Decimal | int | bool


@dataclass(frozen=True)
class Record:
    """One row as the file holds it: fields keyed by the file's column names (a JSON Lines row: its object, and
    `text` the line it was parsed from, for the rejects file)."""

    line: int
    fields: dict[str, Any]
    text: str | None = None


@dataclass(frozen=True)
class ContactRow:
    """A row to import: the normalized address, its attributes (no empty values), the lines it came from."""

    address: str
    attributes: dict[str, Value]
    lines: tuple[int, ...]

    @property
    def line(self) -> int:
        return self.lines[0]


@dataclass(frozen=True)
class RowProblem:
    """A row refused (the rest of the file goes on). `reason` never quotes the address. `fields` is the row as
    read; `raw` what could not be read as fields (CSV cells beyond the header's columns, a JSON Lines line that
    is not an object)."""

    line: int
    reason: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    raw: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """What check_file found: rows that parse, and rows refused."""

    rows: int
    problems: int


# ---------------------------------------------------------------- columns


@dataclass(frozen=True)
class _Plan:
    address: str | None  # the column holding the address
    attributes: tuple[tuple[str, str], ...]  # (column, attribute name), in the file's order


class _ColumnsRefused(Exception):
    """A header (or a JSON Lines row's keys) breaking a column rule; the reader adds file and line."""


def attribute_name(column: str) -> str:
    """The attribute a column header becomes: trimmed, lower case, spaces and dashes as underscores."""
    return column.strip().lower().replace(" ", "_").replace("-", "_")


@lru_cache(maxsize=256)
def _plan(columns: tuple[str, ...], numbered: bool) -> _Plan:
    """Which column is the address and what each other one is called; raises _ColumnsRefused naming columns.
    `numbered`: name a column by its position too (a CSV header), not only its name (a JSON object's key)."""
    found_address: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    attributes = []
    for position, column in enumerate(columns, start=1):
        label = f"column {position} ({column!r})" if numbered else f"field {column!r}"
        name = attribute_name(column)
        if name in ADDRESS_COLUMNS:
            found_address.append((column, label))
            continue
        if not name:
            raise _ColumnsRefused(f"{label} has no name: name it, or delete the column")
        if name in IGNORED_COLUMNS:
            continue
        if name in RESERVED_CONTACT_FIELDS:
            raise _ColumnsRefused(f"{label} is sesflow's own field {name!r} (docs/contacts.md), which an import "
                                  f"never writes: rename the column or leave it out")
        if not ATTRIBUTE_NAME.match(name):
            raise _ColumnsRefused(f"{label} does not make an attribute name ({name!r}): letters, digits, _ . - , "
                                  f"starting with a letter or _, at most 255 characters")
        if name in names:
            raise _ColumnsRefused(f"{names[name]} and {label} both become attribute {name!r}: keep one")
        names[name] = label
        attributes.append((column, name))
    if len(found_address) > 1 and any(attribute_name(c) == "address" for c, _ in found_address) and any(
            attribute_name(c) != "address" for c, _ in found_address):
        # Mailchimp's export has Email Address and a postal Address: the email column is the address, the postal
        # one an attribute named postal_address.
        postal = next((c, label) for c, label in found_address if attribute_name(c) == "address")
        found_address.remove(postal)
        if "postal_address" in names:
            raise _ColumnsRefused(f"{names['postal_address']} and {postal[1]} both become attribute 'postal_address'"
                                  ": keep one")
        names["postal_address"] = postal[1]
        attributes.append((postal[0], "postal_address"))
    if len(found_address) > 1:
        raise _ColumnsRefused(f"{found_address[0][1]} and {found_address[1][1]} would both be the address: keep "
                              f"one, and rename the other (postal_address, say) or leave it out")
    return _Plan(found_address[0][0] if found_address else None, tuple(attributes))


def _columns_error(file: str, line: int, columns: Sequence[str], numbered: bool) -> None:
    if len(columns) > MAX_COLUMNS:
        raise ContactFileError(f"{file}: line {line}: {len(columns):,} columns, at most {MAX_COLUMNS:,}")
    try:
        _plan(tuple(columns), numbered)
    except _ColumnsRefused as refused:
        raise ContactFileError(f"{file}: line {line}: {refused}") from None


# ---------------------------------------------------------------- one row


def parse_row(fields: Mapping[str, Any], line: int, *, file: str = "rows") -> ContactRow | RowProblem:
    """One row: its address normalized (app.domain.addresses) and its attributes, or the problem with it.

    `fields` is keyed by the file's column names (a CSV row as DictReader or Step Functions' CSV reader gives it,
    or a JSON Lines object). Raises ContactFileError (`<file>: line N: ...`) when its keys break a column rule:
    that refuses the whole file, as a bad header does."""
    keys = tuple(fields)
    if len(keys) > MAX_COLUMNS:
        raise ContactFileError(f"{file}: line {line}: {len(keys):,} columns, at most {MAX_COLUMNS:,}")
    try:
        plan = _plan(keys, False)
    except _ColumnsRefused as refused:
        raise ContactFileError(f"{file}: line {line}: {refused}") from None
    if plan.address is None:
        return RowProblem(line, "no email or address field", fields)
    given = fields[plan.address]
    if given is None or (isinstance(given, str) and not given.strip()):
        return RowProblem(line, f"{plan.address}: empty", fields)
    if not isinstance(given, str):
        return RowProblem(line, f"{plan.address}: not text but {_kind(given)}", fields)
    try:
        address = normalize(given)
    except InvalidAddress as invalid:
        return RowProblem(line, f"{plan.address}: not an email address SES sends to: {invalid}", fields)
    attributes: dict[str, Value] = {}
    size = 0
    for column, name in plan.attributes:
        value = fields[column]
        if type(value) is str:  # every CSV cell: the common case, inline
            value = value.strip()
            if value:
                attributes[name] = value
                size += len(name) + (len(value) if value.isascii() else len(value.encode()))  # names are ASCII
            continue
        value, why = _value(value)
        if why:
            return RowProblem(line, f"{column}: {why}", fields)
        if value is None:
            continue
        attributes[name] = value
        size += len(name) + _size(value)
    if size > MAX_ATTRIBUTE_BYTES:
        return RowProblem(line, f"its attributes take {size:,} bytes, at most {MAX_ATTRIBUTE_BYTES:,} (350 KB: a "
                                f"DynamoDB item holds at most 400 KB, and the contact's own fields need the rest)",
                          fields)
    return ContactRow(address, attributes, (line,))


def _value(value: Any) -> tuple[Value | None, str | None]:
    """(the attribute's value or None for no value, why it is refused)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        value = value.strip()
        return value or None, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int | float | Decimal):
        number = _number(value)
        if number is None:
            return None, ("a number DynamoDB cannot store (at most 38 significant digits, magnitude 1E-130 to "
                          "9.9E+125)")
        return number, None
    return None, f"{_kind(value)}: an attribute is text, a number or true/false"


def _number(value: int | float | Decimal) -> Decimal | int | None:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if number.is_zero():
        return 0
    digits = _significant_digits(number)
    if digits > _NUMBER_DIGITS or not _NUMBER_MIN_EXPONENT <= number.adjusted() <= _NUMBER_MAX_EXPONENT:
        return None
    return value if isinstance(value, int) else number


def _size(value: Value) -> int:
    """A value's size as DynamoDB counts it: UTF-8 bytes of a string; 1 byte per 2 significant digits plus 1 of a
    number; 1 of a boolean."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool):
        return 1
    return (_significant_digits(Decimal(value)) + 1) // 2 + 1


def _significant_digits(number: Decimal) -> int:
    """Leading and trailing zeros trimmed, as DynamoDB does (Decimal.normalize would round to 28 digits)."""
    return max(len("".join(map(str, number.as_tuple().digits)).strip("0")), 1)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list"}.get(type(value), f"a {type(value).__name__}")


def merge(rows: Iterable[ContactRow]) -> list[ContactRow]:
    """One ContactRow per address, in the order addresses first appear: a later row's values over an earlier
    one's, the attributes only one of them has kept, every line kept (in order).

    A caller merges within a chunk it writes at once (the same address twice in one batch is one write); across
    chunks the writes are idempotent (an import writes only what differs), so a repeat in a later chunk is just
    another, harmless, write."""
    merged: dict[str, ContactRow] = {}
    for row in rows:
        earlier = merged.get(row.address)
        merged[row.address] = row if earlier is None else ContactRow(
            row.address, {**earlier.attributes, **row.attributes}, earlier.lines + row.lines)
    return list(merged.values())


# ---------------------------------------------------------------- the file


class _Lines:
    """A binary file's physical lines as text, each checked (length, NUL, UTF-8), counted from 1."""

    def __init__(self, raw: BinaryIO, file: str) -> None:
        self.raw, self.file = raw, file
        self.number = 0  # the last line read
        self.delimiter: str | None = None  # CSV: to say "more than 1,000 columns" of an over-long line
        self._record_start = 0
        self._record_bytes = 0

    def begin_record(self) -> None:
        self._record_start, self._record_bytes = self.number + 1, 0

    def fail(self, line: int, what: str) -> NoReturn:
        raise ContactFileError(f"{self.file}: line {line}: {what}")

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            chunk = self.raw.readline(MAX_LINE_BYTES + 1)
        except OSError as error:
            raise ContactFileError(f"{self.file}: line {self.number + 1}: cannot read it "
                                   f"({error.strerror or error})") from None
        if not chunk:
            raise StopIteration
        self.number += 1
        if self.number == 1:
            for mark, spelled in _UTF16_BOMS.items():
                if chunk.startswith(mark):
                    self.fail(1, f"UTF-16 text (byte-order mark {spelled}), not UTF-8: save it as UTF-8")
            chunk = chunk.removeprefix(_BOM)
        if len(chunk) > MAX_LINE_BYTES:
            self._too_long(chunk)
        self._record_bytes += len(chunk)
        if self._record_bytes > MAX_LINE_BYTES:
            self.fail(self._record_start, f"a row longer than {MAX_LINE_BYTES:,} bytes (1 MiB, the most one row "
                                          f"may hold) starts here: is a quote opened and never closed?")
        nul = chunk.find(b"\x00")
        if nul >= 0:
            self.fail(self.number, f"a NUL byte (byte {nul + 1} of the line): a binary file, not CSV or JSON Lines")
        try:
            return chunk.decode("utf-8")
        except UnicodeDecodeError as error:
            self.fail(self.number, f"not UTF-8 text: byte {error.start + 1} of the line is "
                                   f"0x{chunk[error.start]:02X} (save the file as UTF-8)")

    def _too_long(self, chunk: bytes) -> NoReturn:
        if self.delimiter is not None:
            text = chunk.decode("utf-8", "replace")
            if _QUOTED.sub("", text).count(self.delimiter) >= MAX_COLUMNS:
                self.fail(self.number, f"more than {MAX_COLUMNS:,} columns (at most {MAX_COLUMNS:,}), in a line "
                                       f"longer than {MAX_LINE_BYTES:,} bytes")
        self.fail(self.number, f"longer than {MAX_LINE_BYTES:,} bytes (1 MiB, the most one line may hold)")


class ContactFile:
    """An open contacts file, its header read and checked; iterate it (once) for its rows in order, each a
    Record or a RowProblem. `format` is CSV or JSON_LINES, `columns` the CSV header (JSON Lines: none)."""

    def __init__(self, path: str | Path) -> None:
        self.file = str(path)
        self.format = JSON_LINES if self.file.lower().endswith(JSON_LINES_SUFFIXES) else CSV
        self.delimiter: str | None = None
        self.columns: tuple[str, ...] = ()
        try:
            self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 -- closed by close()
        except OSError as error:
            raise ContactFileError(f"{self.file}: cannot read it ({error.strerror or error})") from None
        try:
            self._lines = _Lines(self._raw, self.file)
            self._start()
        except BaseException:
            self._raw.close()
            raise

    def _start(self) -> None:
        """Read up to the first non-blank line (the CSV header, or the first JSON object), and what it says."""
        while True:
            self._lines.begin_record()
            first = next(self._lines, None)
            if first is None:
                self._lines.fail(max(self._lines.number, 1), "the file is empty: it needs a header line naming "
                                                             "the columns (one of them email), then a row each")
            if first.strip():
                break
        self._first, self._first_line = first, self._lines.number
        if first.lstrip().startswith("{"):
            self.format = JSON_LINES
        if self.format == CSV:
            self._header()

    def _header(self) -> None:
        counts = {d: len(next(csv.reader([self._first], delimiter=d), [])) for d in DELIMITERS}
        self.delimiter = max(DELIMITERS, key=lambda d: counts[d])  # the first of the most: comma on a tie
        self._lines.delimiter = self.delimiter
        if csv.field_size_limit() < MAX_LINE_BYTES:  # a field is at most a row (the default is 128 KiB)
            csv.field_size_limit(MAX_LINE_BYTES)
        self._reader = csv.reader(self._chain(), delimiter=self.delimiter, quotechar='"', doublequote=True,
                                  strict=False)
        line = self._first_line  # the header row starts here (and may go on over more lines)
        try:
            header = [cell.strip() for cell in next(self._reader)]
        except csv.Error as error:
            self._lines.fail(line, f"the header is not CSV ({error})")
        if not any(attribute_name(cell) in ADDRESS_COLUMNS for cell in header):
            if any("@" in cell for cell in header):
                self._lines.fail(line, "no header: this line is a row (it holds an address), not column names; "
                                       "add a first line naming the columns, one of them email")
            if len(header) > MAX_COLUMNS:
                _columns_error(self.file, line, header, True)
            shown = ", ".join(repr(c) for c in header[:20]) + (f", ... ({len(header)} in all)"
                                                              if len(header) > 20 else "")
            self._lines.fail(line, f"no address column: found {shown}; one must be email or address (also "
                                   f"e-mail, email address, email_address; any case)")
        _columns_error(self.file, line, header, True)
        self.columns = tuple(header)

    @property
    def ignored_columns(self) -> tuple[str, ...]:
        """The header's columns read as nothing (IGNORED_COLUMNS: an export's status and lists)."""
        return tuple(c for c in self.columns if attribute_name(c) in IGNORED_COLUMNS)

    @property
    def reject_columns(self) -> tuple[str, ...] | None:
        """What RejectsWriter takes for this file: the CSV header, or None (JSON Lines: one `record` column)."""
        return self.columns if self.format == CSV else None

    def _chain(self) -> Iterator[str]:
        yield self._first
        yield from self._lines

    def __iter__(self) -> Iterator[Record | RowProblem]:
        return self._csv_rows() if self.format == CSV else self._json_rows()

    def _csv_rows(self) -> Iterator[Record | RowProblem]:
        width = len(self.columns)
        while True:
            self._lines.begin_record()
            line = self._lines.number + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield RowProblem(line, f"not CSV ({error})")
                continue
            if not cells or (not cells[0].strip() and not "".join(cells).strip()):
                continue
            if len(cells) > MAX_COLUMNS:
                self._lines.fail(line, f"{len(cells):,} columns, at most {MAX_COLUMNS:,}")
            if len(cells) > width:
                yield RowProblem(line, f"{len(cells)} fields, but the header names {width} columns",
                                 dict(zip(self.columns, cells, strict=False)), tuple(cells[width:]))
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            yield Record(line, dict(zip(self.columns, cells, strict=True)))

    def _json_rows(self) -> Iterator[Record | RowProblem]:
        line, text = self._first_line, self._first
        while True:
            if text.strip():
                yield self._json_row(line, text)
            self._lines.begin_record()
            try:
                text = next(self._lines)
            except StopIteration:
                return
            line = self._lines.number

    def _json_row(self, line: int, text: str) -> Record | RowProblem:
        raw = (text.rstrip("\r\n"),)
        try:
            value = json.loads(raw[0], parse_float=Decimal, parse_constant=_no_constant,
                               object_pairs_hook=_unique_keys)
        except _DuplicateKey as duplicate:
            return RowProblem(line, f"field {duplicate.args[0]!r} appears twice", raw=raw)
        except (ValueError, RecursionError) as error:
            where = f" at column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
            what = error.msg if isinstance(error, json.JSONDecodeError) else "not a JSON value"
            return RowProblem(line, f"not JSON ({what}{where})", raw=raw)
        if not isinstance(value, dict):
            return RowProblem(line, f"not a JSON object but {_kind(value)}", raw=raw)
        _columns_error(self.file, line, list(value), False)
        return Record(line, value, raw[0])

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> ContactFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def open_contacts(path: str | Path) -> ContactFile:
    """The file opened and its header checked (ContactFileError when it cannot be used); iterate it for rows."""
    return ContactFile(path)


def read_rows(path: str | Path) -> Iterator[ContactRow | RowProblem]:
    """Every row of the file in order, parsed: a ContactRow or a RowProblem (ContactFileError stops it)."""
    with open_contacts(path) as contacts:
        for record in contacts:
            if isinstance(record, RowProblem):
                yield record
                continue
            row = parse_row(record.fields, record.line, file=contacts.file)
            if isinstance(row, RowProblem) and record.text is not None:
                row = replace(row, raw=(record.text,))  # the rejects file keeps the line as it was
            yield row


def check_file(path: str | Path) -> Summary:
    """Read the whole file through, keeping nothing: raises ContactFileError for any file-level problem (before
    an import writes anything), else how many rows parse and how many are refused."""
    rows = problems = 0
    for row in read_rows(path):
        if isinstance(row, RowProblem):
            problems += 1
        else:
            rows += 1
    return Summary(rows, problems)


# ---------------------------------------------------------------- rejects


def rejects_path(path: str | Path) -> Path:
    """Where the rejects of `path` go: beside it, `<file>.rejects.csv`."""
    return Path(f"{path}.rejects.csv")


REJECTS_COLUMNS = ("line", "reason")  # a rejects file's first columns: how one is told from any other file


class RejectsWriter:
    """The rows refused, as CSV: `line`, `reason`, then the row as it was: the file's own columns (a CSV file's
    header, cells past it after them) or, for JSON Lines (columns None), one `record` column with the line."""

    def __init__(self, out: TextIO, columns: Sequence[str] | None) -> None:
        self._writer = csv.writer(out)
        self._columns = tuple(columns) if columns is not None else None
        self._writer.writerow([*REJECTS_COLUMNS, *(self._columns if self._columns is not None else ("record",))])
        self.count = 0

    def write(self, problem: RowProblem) -> None:
        if self._columns is None:
            record = problem.raw[0] if problem.raw else json.dumps(dict(problem.fields), ensure_ascii=False,
                                                                   default=str)
            cells = [record]
        else:
            cells = [_cell(problem.fields.get(c)) for c in self._columns] + list(problem.raw)
        self._writer.writerow([problem.line, problem.reason, *cells])
        self.count += 1


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def write_rejects(out: TextIO, problems: Iterable[RowProblem], columns: Sequence[str] | None) -> int:
    """Write every problem (RejectsWriter) to `out`; how many."""
    writer = RejectsWriter(out, columns)
    for problem in problems:
        writer.write(problem)
    return writer.count
