"""Reading the tables people hand over: comma, semicolon or tab separated, UTF-8 or GB18030."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recoup.scoring.errors import TrainingDataInvalid

SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 20
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Leading bytes of files people mistake for tables.
BINARY_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook"),
    (b"PAR1", "a Parquet file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3", "a SQLite database"),
)


class NotACsvFile(TrainingDataInvalid):
    """The file is JSON, a spreadsheet or another binary format rather than delimited text."""


def _encoding(head: bytes) -> str:
    """Return the text encoding of a file's first bytes: UTF-8 (with or without BOM) or GB18030."""
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # The sample may end inside a multi-byte character; only an earlier error counts.
        if error.start < len(head) - 4:
            return "gb18030"
    return "utf-8-sig"


def sniff_delimiter(text: str) -> str:
    """Return the separator that splits the first lines into the same number of fields."""
    lines = [line for line in text.splitlines()[:SNIFF_LINES] if line.strip()]
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]  # the sample may cut the last line short
    best, best_fields = ",", 0
    for delimiter in DELIMITERS:
        counts = [line.count(delimiter) for line in lines]
        if counts and min(counts) > 0 and len(set(counts)) == 1 and counts[0] > best_fields:
            best, best_fields = delimiter, counts[0]
    if best_fields:
        return best
    # Quoted fields may hold separators; fall back to the most frequent one on the header.
    header = lines[0] if lines else ""
    return max(DELIMITERS, key=lambda delimiter: (header.count(delimiter), delimiter == ","))


def read_table(path: Path) -> pd.DataFrame:
    """Read a delimited text file, telling plainly when it is not one."""
    if not path.is_file():
        raise TrainingDataInvalid(f"file {path} does not exist")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise NotACsvFile(f"{path.name} is empty")
    for signature, kind in BINARY_SIGNATURES:
        if head.startswith(signature):
            raise NotACsvFile(
                f"{path.name} is not CSV: it is {kind}; export it as CSV "
                "(comma, semicolon or tab separated text) and try again"
            )
    if b"\x00" in head:
        raise NotACsvFile(
            f"{path.name} is not CSV: it is a binary file; export it as CSV "
            "(comma, semicolon or tab separated text) and try again"
        )
    encoding = _encoding(head)
    text = head.decode(encoding, errors="ignore")
    if text.lstrip()[:1] in {"{", "["}:
        raise NotACsvFile(
            f"{path.name} is not CSV: it looks like JSON; convert it to a table with one row "
            "per account and a header line"
        )
    delimiter = sniff_delimiter(text)
    try:
        return pd.read_csv(path, sep=delimiter, encoding=encoding)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise NotACsvFile(
            f"{path.name} is not a readable CSV ({DELIMITER_NAMES[delimiter]} separated): {error}"
        ) from error
