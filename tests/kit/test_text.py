"""The one free-text check shared by imports, API bodies and forms."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from recoup.kit.schemas import CleanText
from recoup.kit.text import checked_text, clean_text


class Note(BaseModel):
    note: CleanText | None = Field(default=None, max_length=20)


class TestCheckedText:
    def test_line_breaks_and_tabs_become_single_spaces(self) -> None:
        assert checked_text("回电\n  约定\t周五") == "回电 约定 周五"

    @pytest.mark.parametrize("character", ["\x00", "\u202e", "\u2066", "\ufeff", "\x1b"])
    def test_refuses_what_imports_refuse(self, character: str) -> None:
        text = f"张{character}伟"
        assert clean_text(text)[1] == "control_character"
        with pytest.raises(ValueError, match="control character"):
            checked_text(text)

    def test_refuses_spreadsheet_formulas(self) -> None:
        with pytest.raises(ValueError, match="formula"):
            checked_text('=HYPERLINK("http://evil.example")')

    def test_refuses_text_that_is_only_line_breaks(self) -> None:
        with pytest.raises(ValueError, match="only spaces"):
            checked_text("\n\n")

    def test_empty_text_stays_empty(self) -> None:
        assert checked_text("") == ""


class TestCleanTextField:
    def test_a_schema_field_cleans_and_keeps_its_length_limit(self) -> None:
        assert Note(note="called\r\nback").note == "called back"
        assert Note().note is None
        with pytest.raises(ValidationError, match="at most 20"):
            Note(note="x" * 21)

    def test_a_schema_field_refuses_an_rtl_override(self) -> None:
        with pytest.raises(ValidationError, match="U\\+202E"):
            Note(note="paid\u202e")
