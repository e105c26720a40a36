"""Tables to CSV and XLSX: header rows, numbers kept, formula-like text neutralised."""

from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import load_workbook

from recoup.kit.tabular import Sheet, neutralise, to_csv, to_xlsx

SHEET = Sheet(
    title="Agents",
    header=[("Exported by", "=cmd|' /C calc'!A0"), ("Exported at", "2026-03-31 10:00")],
    columns=["agent", "attempts", "note"],
    rows=[["@SUM(1+1)", 12, "+86 138"], ["-2", 3.5, None], ["ok", 0, date(2026, 3, 1)]],
)


def test_formula_like_text_gets_an_apostrophe() -> None:
    for text in ("=1+1", "+1", "-1", "@A1"):
        assert neutralise(text) == "'" + text
    assert neutralise("张伟") == "张伟"
    assert neutralise(-5) == -5


def test_csv_has_header_rows_and_safe_cells() -> None:
    data = to_csv(SHEET)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["Agents"]
    assert rows[1] == ["Exported by", "'=cmd|' /C calc'!A0"]
    assert rows[4] == ["agent", "attempts", "note"]
    assert rows[5] == ["'@SUM(1+1)", "12", "'+86 138"]
    assert rows[6] == ["'-2", "3.5", ""]
    assert rows[7][2] == "2026-03-01"


def test_xlsx_keeps_numbers_and_never_holds_a_formula() -> None:
    workbook = load_workbook(io.BytesIO(to_xlsx(SHEET)))
    sheet = workbook.active
    assert sheet is not None
    assert sheet["A1"].value == "Agents"
    assert sheet["B2"].value == "'=cmd|' /C calc'!A0"
    assert sheet["A6"].value == "'@SUM(1+1)"
    assert sheet["B6"].value == 12
    assert sheet["B7"].value == 3.5
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
