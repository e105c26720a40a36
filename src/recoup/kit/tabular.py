"""Tables to files: CSV and XLSX with header rows, safe to open in a spreadsheet.

A text cell starting with ``=``, ``+``, ``-`` or ``@`` (a spreadsheet would run it as a formula)
is written with a leading apostrophe; numbers stay numbers. The first rows say what the file
is, who exported it and when; then a blank row, the column labels and the data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from recoup.kit.text import FORMULA_PREFIXES

Cell = str | int | float | Decimal | date | datetime | None

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: Any) -> Cell:
    """Return a cell value safe in a spreadsheet: formula-like text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    if isinstance(value, bool):
        return str(value)
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Sheet:
    """A table to write: its header rows (label, value), column labels, and rows."""

    title: str
    header: Sequence[tuple[str, str]]
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def _lines(sheet: Sheet) -> list[list[Cell]]:
    lines: list[list[Cell]] = [[neutralise(sheet.title)]]
    lines += [[neutralise(label), neutralise(value)] for label, value in sheet.header]
    lines.append([])
    lines.append([neutralise(label) for label in sheet.columns])
    lines += [[neutralise(value) for value in row] for row in sheet.rows]
    return lines


def to_csv(sheet: Sheet) -> bytes:
    """Return the sheet as UTF-8 CSV with a byte-order mark (Excel reads Chinese right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for line in _lines(sheet):
        writer.writerow(
            "" if value is None else value.isoformat() if isinstance(value, date) else value
            for value in line
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(sheet: Sheet) -> bytes:
    """Return the sheet as an XLSX workbook of one worksheet."""
    from openpyxl import Workbook

    workbook = Workbook()
    worksheet = workbook.active
    assert worksheet is not None
    worksheet.title = _sheet_title(sheet.title)
    for line in _lines(sheet):
        row = []
        for value in line:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.replace(tzinfo=None)  # Excel has no time zones: shown as given
            row.append(value)
        worksheet.append(row)
    for row in worksheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever it reads
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if character in "[]:*?/\\" else character for character in title)
    return (cleaned.strip() or "Sheet")[:31]
