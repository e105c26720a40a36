"""Normalisation folds disguises and keeps offsets into the original text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from recoup.compliance.templates.normalise import normalise, normalise_words, simplified


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


class TestLookalikesAndAccents:
    def test_cyrillic_and_greek_letters_fold_to_latin(self) -> None:
        assert normalise("\u0430rr\u0435st \u03c1rison").text == "arrestprison"

    def test_pinyin_tone_marks_go(self) -> None:
        assert normalise("zuò láo").text == "zuolao"

    def test_chinese_is_untouched(self) -> None:
        assert normalise("坐牢").text == "坐牢"


class TestWords:
    def test_one_space_between_words(self) -> None:
        assert normalise_words("We  know, where-you live!").text == "we know where you live"

    def test_spelled_out_letters_join(self) -> None:
        assert normalise_words("P.O.L.I.C.E will come").text == "police will come"
        assert normalise_words("you i d i o t").text == "you idiot"

    def test_two_single_letters_stay_apart(self) -> None:
        assert normalise_words("Plan A or B").text == "plan a or b"

    def test_offsets_point_into_the_original(self) -> None:
        original = "we’ll  j-a-i-l you"
        folded = normalise_words(original)
        start = folded.text.index("jail")
        span = folded.original_span(start, start + 4)
        assert original[span[0] : span[1]] == "j-a-i-l"


class TestOffsetsProperty:
    @given(st.text(max_size=60))
    def test_every_normalised_character_maps_to_an_original_one(self, text: str) -> None:
        folded = normalise(text)
        assert len(folded.origins) == len(folded.text)
        assert list(folded.origins) == sorted(folded.origins)
        assert all(0 <= index < len(text) for index in folded.origins)

    @given(st.text(max_size=60))
    def test_word_text_maps_to_the_original_too(self, text: str) -> None:
        folded = normalise_words(text)
        assert len(folded.origins) == len(folded.text)
        assert list(folded.origins) == sorted(folded.origins)
        assert all(0 <= index < len(text) for index in folded.origins)
