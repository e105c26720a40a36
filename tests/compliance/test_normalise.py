"""Normalisation folds disguises and keeps offsets into the original text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from recoup.compliance.normalise import normalise, simplified


class TestFolding:
    def test_full_width_and_case(self) -> None:
        assert normalise("ＫＩＬＬ You").text == "killyou"

    def test_traditional_to_simplified(self) -> None:
        assert normalise("法院傳票").text == "法院传票"
        assert simplified("還錢") == "还钱"

    def test_inserted_spaces_punctuation_and_zero_width(self) -> None:
        assert normalise("坐 。牢\u200b!").text == "坐牢"
        assert normalise("s-b").text == "sb"

    def test_offsets_point_into_the_original(self) -> None:
        original = "你好，坐　牢！"
        folded = normalise(original)
        start = folded.text.index("坐牢")
        span = folded.original_span(start, start + 2)
        assert original[span[0] : span[1]] == "坐　牢"


class TestOffsetsProperty:
    @given(st.text(max_size=60))
    def test_every_normalised_character_maps_to_an_original_one(self, text: str) -> None:
        folded = normalise(text)
        assert len(folded.origins) == len(folded.text)
        assert list(folded.origins) == sorted(folded.origins)
        assert all(0 <= index < len(text) for index in folded.origins)
