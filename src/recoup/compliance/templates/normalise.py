"""Text normalisation for script review that remembers where each character came from."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Protocol, cast

import opencc

# Letters and marks and digits survive; punctuation, separators, symbols and control or
# format characters (zero-width spaces) are what people insert to dodge a word filter.
_DROPPED_CATEGORIES = frozenset("PZSC")


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


@cache
def _traditional_to_simplified() -> _Converter:
    return cast(_Converter, opencc.OpenCC("t2s"))


# Cyrillic and Greek letters that look like Latin ones ("аrrest" with a Cyrillic а).
_LOOKALIKES = str.maketrans("аеѕһіјкорсухԁԛԝɡαεικνορτυχ", "aeshijkopcyxdqwgaeikvoptux")


@cache
def _fold(character: str) -> str:
    """Return the character full-width folded, lowercased and stripped of filler.

    Accents go too, so pinyin written with tone marks (zuò láo) matches plain pinyin.
    """
    folded = unicodedata.normalize("NFKC", character).lower().translate(_LOOKALIKES)
    if folded.isascii():
        return "".join(c for c in folded if unicodedata.category(c)[0] not in _DROPPED_CATEGORIES)
    decomposed = unicodedata.normalize("NFKD", folded)
    if all(c.isascii() or unicodedata.category(c) == "Mn" for c in decomposed):
        folded = "".join(c for c in decomposed if c.isascii())
    return "".join(c for c in folded if unicodedata.category(c)[0] not in _DROPPED_CATEGORIES)


@dataclass(frozen=True, slots=True)
class NormalisedText:
    """Text folded for matching, with the original index of every character."""

    original: str
    text: str
    origins: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text to the original text."""
        return self.origins[start], self.origins[end - 1] + 1


def simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified, one character for one."""
    converted = _traditional_to_simplified().convert(text)
    if len(converted) == len(text):
        return converted
    # Phrase conversions can change the length; per character keeps offsets exact.
    converter = _traditional_to_simplified()
    return "".join(
        single if len(single := converter.convert(character)) == 1 else character
        for character in text
    )


def normalise(text: str) -> NormalisedText:
    """Fold full-width to half-width, traditional to simplified, case, and drop filler."""
    characters: list[str] = []
    origins: list[int] = []
    for index, character in enumerate(simplified(text)):
        for folded in _fold(character):
            characters.append(folded)
            origins.append(index)
    return NormalisedText(original=text, text="".join(characters), origins=tuple(origins))


def normalise_term(term: str) -> str:
    """Normalise a lexicon term the same way as the text it is matched against."""
    return normalise(term).text


def normalise_words(text: str) -> NormalisedText:
    """Fold like ``normalise`` but keep one space where filler separated two words.

    English phrase patterns need word boundaries ("we know where you live" must not
    match inside other words), which the filler-free text no longer has. Three or more
    single letters in a row are one spelled-out word ("P.O.L.I.C.E", "j a i l").
    """
    words: list[list[tuple[str, int]]] = [[]]
    gaps: list[int] = []
    for index, character in enumerate(simplified(text)):
        folded = _fold(character)
        if not folded:
            if words[-1]:
                words.append([])
                gaps.append(index)
            continue
        words[-1].extend((kept, index) for kept in folded)
    if not words[-1]:
        words.pop()
        gaps = gaps[: len(words) - 1]
    joined = [False] * len(words)
    run_start = 0
    for position in range(len(words) + 1):
        single = position < len(words) and len(words[position]) == 1
        if single and words[position][0][0].isascii():
            continue
        if position - run_start >= 3:
            joined[run_start + 1 : position] = [True] * (position - run_start - 1)
        run_start = position + 1
    characters: list[str] = []
    origins: list[int] = []
    for position, word in enumerate(words):
        if position > 0 and not joined[position]:
            characters.append(" ")
            origins.append(gaps[position - 1])
        for kept, origin in word:
            characters.append(kept)
            origins.append(origin)
    return NormalisedText(original=text, text="".join(characters), origins=tuple(origins))
