"""Streaming readers of import files: CSV (UTF-8, with BOM, GBK/GB18030), XLSX, JSON Lines.

A reader yields rows one at a time, so a file of any size never sits in memory. Problems
with the file as a whole (unreadable, not the format it claims, missing required columns)
raise ``UnusableFile``; problems with one row travel with that row as a ``Problem``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Final

from recoup.ingest.rules import Problem, columns_for, normalise_header, required_columns
from recoup.kit.errors import ValidationFailed

DETECT_BYTES: Final = 256 * 1024
# Mainframe exports carry a few stray NUL bytes (their rows are rejected, naming the field);
# a file whose first bytes hold more control bytes than this share is binary, not text.
BINARY_CONTROL_SHARE: Final = 0.01
# ... and more than this many of them, so one stray NUL in a short file is not "binary".
BINARY_CONTROL_MIN: Final = 16
# C0 control bytes but tab, newline, form feed, carriage return and DOS end-of-file.
_BINARY_CONTROL_BYTES: Final = bytes(sorted(set(range(32)) - {9, 10, 12, 13, 26}))
NUL_SHOWN: Final = "\u2400"  # ␀, how a reject report shows a NUL byte
MAX_LINE_BYTES: Final = 1024 * 1024
FORMATS: Final = ("csv", "xlsx", "jsonl")
_SUFFIXES: Final = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
# A stray quote makes the csv module read on to the next quote; let it, and judge the row.
csv.field_size_limit(16 * 1024 * 1024)


class UnusableFile(ValidationFailed):
    """The file as a whole cannot be imported; nothing in it was read as rows."""


@dataclass(slots=True)
class RawRow:
    """One row as read: its number as a spreadsheet shows it, its values by column, or a problem."""

    number: int
    values: dict[str, str | None]
    problem: Problem | None = None


@dataclass
class Source:
    """An opened import file: what was detected about it and its rows."""

    path: Path
    file_format: str
    encoding: str | None
    columns: list[str]
    ignored_columns: list[str]
    rows: Iterator[RawRow]
    size: int
    position: Callable[[], int]
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self._closers:
            close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_source(
    path: Path, *, kind: str, file_format: str | None = None, encoding: str | None = None
) -> Source:
    """Open ``path`` as an import file of ``kind``; raise ``UnusableFile`` if it is unusable."""
    if not path.is_file():
        raise UnusableFile(f"{path} does not exist or is not a file")
    try:
        handle = path.open("rb")
    except OSError as error:
        raise UnusableFile(f"cannot open {path}: {error.strerror}") from None
    try:
        head = handle.read(DETECT_BYTES)
        handle.seek(0)
        chosen = file_format or _detect_format(path, head)
        if chosen not in FORMATS:
            raise UnusableFile(f"unknown format {chosen!r}: use one of {', '.join(FORMATS)}")
        if not head:
            raise UnusableFile(
                f"{path.name} is empty: an import file starts with a header row "
                f"({', '.join(required_columns(kind))} at least)"
            )
        if chosen == "xlsx":
            handle.close()
            return _open_xlsx(path, kind=kind)
        if head.startswith(b"PK\x03\x04"):
            raise UnusableFile(
                f"{path.name} is an Excel/zip file, not text: give it the .xlsx suffix"
            )
        if chosen == "jsonl":
            return _open_jsonl(path, handle, head, kind=kind)
        return _open_csv(path, handle, head, kind=kind, encoding=encoding)
    except BaseException:
        handle.close()
        raise


def _detect_format(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise UnusableFile(
            f"{path.name} is an old binary Excel file: save it as .xlsx or CSV UTF-8"
        )
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "jsonl"
    return "csv"


def detect_encoding(head: bytes, *, declared: str | None = None) -> str:
    """Return the text encoding of a file from its first bytes, or raise ``UnusableFile``."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnusableFile("the file is UTF-16 text: save it as CSV UTF-8 (or GB18030)")
    if b"\x00" in head:
        if looks_binary(head):
            raise UnusableFile("the file holds NUL bytes: it is binary, not CSV text")
        # Stray NULs decode in any encoding; the rows holding them are rejected when read.
        head = head.replace(b"\x00", b"")
    if declared is not None:
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            raise UnusableFile(f"unknown encoding {declared!r}: use utf-8 or gb18030") from None
        # GB18030 is a superset of GBK and GB2312: decoding with it loses nothing.
        name = "gb18030" if name in {"gbk", "gb2312", "cp936"} else name
        if name == "utf-8" and head.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        problem = _decode_problem(head, name)
        if problem is not None:
            hint = (
                "" if name == "gb18030" else "; it may be GBK/GB18030: omit --encoding to detect it"
            )
            raise UnusableFile(f"the file is not valid {declared} text ({problem}){hint}")
        return name
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError as error:
        # Valid multi-byte UTF-8 before the first bad byte: a UTF-8 file with some bad rows
        # (GBK text is almost never valid UTF-8), whose rows the rules reject one by one.
        if any(byte >= 0x80 for byte in head[: error.start]):
            return "utf-8"
    else:
        return "utf-8"
    if _decode_problem(head, "gb18030") is None:
        return "gb18030"
    raise UnusableFile(
        "the file is neither UTF-8 nor GBK/GB18030 text: export it as CSV UTF-8, or pass --encoding"
    )


def looks_binary(head: bytes) -> bool:
    """Tell whether a file's first bytes are binary data rather than text with stray NULs."""
    controls = len(head) - len(head.translate(None, _BINARY_CONTROL_BYTES))
    return controls > max(BINARY_CONTROL_MIN, len(head) * BINARY_CONTROL_SHARE)


def nul_problem(values: Mapping[str, str | None]) -> Problem | None:
    """Return the problem of a row whose field holds a NUL byte, naming the first such field."""
    for name, value in values.items():
        if value is not None and "\x00" in value:
            return Problem(
                name,
                value.replace("\x00", NUL_SHOWN),
                "nul_byte",
                f"{name} holds a NUL byte (0x00), as padded mainframe exports do: "
                "remove it and import the row again",
            )
    return None


def _decode_problem(head: bytes, encoding: str) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        # final=False: the sample may end in the middle of a character.
        decoder.decode(head, final=False)
    except UnicodeDecodeError as error:
        return f"byte 0x{head[error.start]:02x} at offset {error.start}"
    return None


def _missing_columns_message(kind: str, missing: list[str], header: list[str]) -> str:
    shown = ", ".join(name for name in header if name) or "(nothing)"
    return (
        f"missing required column(s) {', '.join(missing)} for an import of {kind}; the header has: "
        f"{shown[:300]}. Add them to the first row (see docs/import-formats.md; names are "
        "matched ignoring case and spaces)"
    )


def _check_header(kind: str, header: list[str]) -> tuple[list[str], list[str]]:
    known = {column.name for column in columns_for(kind)}
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise UnusableFile(f"column {name!r} appears twice in the header: keep one")
        seen.add(name)
    missing = [name for name in required_columns(kind) if name not in seen]
    if missing:
        raise UnusableFile(_missing_columns_message(kind, missing, header))
    ignored = [name for name in header if name and name not in known]
    return [name for name in header if name in known], ignored


def _open_csv(
    path: Path, handle: IO[bytes], head: bytes, *, kind: str, encoding: str | None
) -> Source:
    chosen = detect_encoding(head, declared=encoding)
    # Later bad bytes become lone surrogates, which the row rules reject with a reason.
    text = io.TextIOWrapper(handle, encoding=chosen, errors="surrogateescape", newline="")
    first_line = head.split(b"\n", 1)[0]
    delimiter = "\t" if first_line.count(b"\t") > first_line.count(b",") else ","
    reader = csv.reader(text, delimiter=delimiter)
    header_number = 0
    header: list[str] = []
    try:
        for record in reader:
            header_number += 1
            if any(cell.strip() for cell in record):
                header = [normalise_header(cell) for cell in record]
                break
    except csv.Error as error:
        raise UnusableFile(f"the header row cannot be read as CSV: {error}") from None
    if not header:
        raise UnusableFile(f"{path.name} has no header row: the first row names the columns")
    if any("\x00" in name for name in header):
        raise UnusableFile(
            f"the header row (line {header_number}) holds a NUL byte: "
            "the column names must be plain text"
        )
    columns, ignored = _check_header(kind, header)
    positions = [(index, name) for index, name in enumerate(header) if name in columns]
    width = len(header)
    names = [name for _index, name in positions]
    # The usual file has only known columns: its rows pair with the header as they are.
    every_column = [index for index, _name in positions] == list(range(width))

    def rows() -> Iterator[RawRow]:
        number = header_number
        try:
            for record in reader:
                number += 1
                if len(record) != width:
                    if not any(cell.strip() for cell in record):
                        continue
                    yield RawRow(
                        number,
                        {},
                        Problem(
                            "(row)",
                            "",
                            "field_count",
                            f"the row has {len(record)} fields, the header has {width}",
                        ),
                    )
                    continue
                values: dict[str, str | None]
                if every_column:
                    values = dict(zip(names, record, strict=True))
                else:
                    values = {name: record[index] for index, name in positions}
                # One join and search per row: a field-by-field scan cost more than the rest
                # of reading. Only known columns count; an ignored column's NUL harms nothing.
                if "\x00" in "".join(record):
                    yield RawRow(number, values, nul_problem(values))
                else:
                    yield RawRow(number, values)
        except csv.Error as error:
            raise UnusableFile(f"row {number + 1} cannot be read as CSV: {error}") from None

    return Source(
        path=path,
        file_format="csv",
        encoding=chosen,
        columns=columns,
        ignored_columns=ignored,
        rows=rows(),
        size=path.stat().st_size,
        position=handle.tell,
        _closers=[text.close],
    )


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _open_xlsx(path: Path, *, kind: str) -> Source:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as error:
        raise UnusableFile(f"{path.name} is not a readable XLSX workbook ({error})") from None
    sheet = workbook[kind] if kind in workbook.sheetnames else workbook.worksheets[0]
    cells = sheet.iter_rows()
    header: list[str] = []
    header_number = 0
    for row in cells:
        header_number += 1
        texts = [_cell_text(cell.value) or "" for cell in row]
        if any(text.strip() for text in texts):
            header = [normalise_header(text) for text in texts]
            break
    if not header:
        workbook.close()
        raise UnusableFile(f"{path.name}: the first sheet has no header row")
    columns, ignored = _check_header(kind, header)
    positions = [(index, name) for index, name in enumerate(header) if name in columns]
    read = 0

    def rows() -> Iterator[RawRow]:
        nonlocal read
        number = header_number
        for row in cells:
            number += 1
            read = number
            values: dict[str, str | None] = {}
            problem = None
            for index, name in positions:
                cell = row[index] if index < len(row) else None
                if cell is None:
                    values[name] = None
                    continue
                if getattr(cell, "data_type", None) == "f":
                    problem = Problem(
                        name,
                        str(cell.value)[:80],
                        "formula_cell",
                        "the cell holds a formula: export the sheet with values only",
                    )
                values[name] = _cell_text(cell.value)
            if problem is None and not any(v is not None and v.strip() for v in values.values()):
                continue
            yield RawRow(number, values, problem)

    return Source(
        path=path,
        file_format="xlsx",
        encoding=None,
        columns=columns,
        ignored_columns=ignored,
        rows=rows(),
        size=sheet.max_row or 0,
        position=lambda: read,
        _closers=[workbook.close],
    )


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise TypeError(type(value).__name__)


def _parse_json_line(line: bytes) -> Any:
    # Numbers stay text so amounts are converted exactly, never through a float.
    return json.loads(line, parse_float=str, parse_int=str, parse_constant=str)


def _open_jsonl(path: Path, handle: IO[bytes], head: bytes, *, kind: str) -> Source:
    if head.startswith(codecs.BOM_UTF8):
        handle.read(len(codecs.BOM_UTF8))
    first = head.removeprefix(codecs.BOM_UTF8).lstrip().split(b"\n", 1)[0]
    try:
        parsed = _parse_json_line(first)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise UnusableFile(
            f"{path.name} is not JSON Lines: each line must be one JSON object like "
            '{"external_id": "A1", ...}'
        )
    known = {column.name for column in columns_for(kind)}
    ignored: list[str] = []

    def rows() -> Iterator[RawRow]:
        number = 0
        while True:
            line = handle.readline(MAX_LINE_BYTES)
            if not line:
                return
            number += 1
            if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield RawRow(number, {}, Problem("(row)", "", "too_long", "the line is over 1 MiB"))
                continue
            if not line.strip():
                continue
            try:
                item = _parse_json_line(line)
            except (ValueError, UnicodeDecodeError) as error:
                yield RawRow(
                    number, {}, Problem("(row)", "", "bad_json", f"not a JSON object: {error}")
                )
                continue
            if not isinstance(item, dict):
                yield RawRow(
                    number, {}, Problem("(row)", "", "bad_json", "the line is not a JSON object")
                )
                continue
            values: dict[str, str | None] = {}
            problem = None
            for key, value in item.items():
                name = normalise_header(str(key))
                if name not in known:
                    if name not in ignored and len(ignored) < 50:
                        ignored.append(name)
                    continue
                try:
                    values[name] = _json_text(value)
                except TypeError as error:
                    problem = Problem(
                        name, "", "bad_value", f"{name} must be text or a number, not {error}"
                    )
            yield RawRow(number, values, problem or nul_problem(values))

    return Source(
        path=path,
        file_format="jsonl",
        encoding="utf-8",
        columns=sorted(known),
        ignored_columns=ignored,
        rows=rows(),
        size=path.stat().st_size,
        position=handle.tell,
        _closers=[handle.close],
    )
