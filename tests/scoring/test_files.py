"""Reading the files people hand over: separators, encodings, and plain words for non-CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recoup.scoring.files import NotACsvFile, read_table, sniff_delimiter
from tests.scoring.conftest import make_credit_frame


class TestSeparators:
    @pytest.mark.parametrize("separator", [";", "\t", ",", "|"])
    def test_the_separator_is_detected(self, tmp_path: Path, separator: str) -> None:
        path = tmp_path / "credit.csv"
        frame = make_credit_frame(50)
        frame.to_csv(path, sep=separator, index=False)
        read = read_table(path)
        assert list(read.columns) == list(frame.columns)
        assert read["utilisation"].dtype.kind == "f"

    def test_semicolon_files_with_decimal_commas_in_quotes_keep_their_columns(self) -> None:
        text = 'name;amount;flag\n"Li, Wei";"1,5";1\n"Wang";"2,0";0\n'
        assert sniff_delimiter(text) == ";"

    def test_a_gb18030_file_with_chinese_headers_is_read(self, tmp_path: Path) -> None:
        path = tmp_path / "逾期.csv"
        path.write_bytes("客户,逾期天数,违约\n张三,30,1\n李四,0,0\n".encode("gb18030"))
        assert list(read_table(path).columns) == ["客户", "逾期天数", "违约"]


class TestNotCsv:
    def test_json_is_named_as_json(self, tmp_path: Path) -> None:
        path = tmp_path / "accounts.csv"
        path.write_text(json.dumps([{"id": 1, "bad": 0}]))
        with pytest.raises(NotACsvFile, match=r"accounts.csv is not CSV: it looks like JSON"):
            read_table(path)

    def test_a_spreadsheet_is_named_as_one(self, tmp_path: Path) -> None:
        path = tmp_path / "accounts.csv"
        path.write_bytes(b"PK\x03\x04" + bytes(200))
        with pytest.raises(NotACsvFile, match=r"not CSV: it is an Excel workbook"):
            read_table(path)

    def test_other_binary_data_is_refused_plainly(self, tmp_path: Path) -> None:
        path = tmp_path / "model.bin"
        path.write_bytes(bytes(range(256)) * 4)
        with pytest.raises(NotACsvFile, match=r"model.bin is not CSV: it is a binary file"):
            read_table(path)

    def test_an_empty_file_is_named_empty(self, tmp_path: Path) -> None:
        path = tmp_path / "empty.csv"
        path.write_text("\n")
        with pytest.raises(NotACsvFile, match=r"empty\.csv is empty"):
            read_table(path)
