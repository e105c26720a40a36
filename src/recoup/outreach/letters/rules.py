"""Pure rules of letters: what a letter holds, how its text breaks into lines, the manifest.

A letter is the approved template's rendered text (what the outbox queued, so the elements the
pack requires — CN-DISC, or the US validation notice — are in it: template review refuses a
letter template without them) under a letterhead with the sender and the recipient's address.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from recoup.outreach.dialer.rules import safe_cell

# The print manifest's columns: one row per letter, in print order; no personal data (the
# address is printed on the letter, for a window envelope).
MANIFEST_COLUMNS: tuple[str, ...] = (
    "sequence",
    "message_id",
    "first_page",
    "pages",
    "debtor_ref",
    "account_ref",
    "template_id",
    "template_version",
    "decision_id",
    "sent_at",
)


@dataclass(frozen=True, slots=True)
class LetterContent:
    """Everything printed on one letter."""

    message_id: int
    locale: str
    sender_name: str
    sender_address: str
    sender_phone: str
    recipient_name: str
    recipient_address: str
    day: date
    title: str
    body: str
    reference: str


def title_for(jurisdiction: str, *, validation_notice: bool) -> tuple[str, str]:
    """Return the letter's title (locale, text): a CN collection letter or a US notice."""
    if jurisdiction.upper().startswith("CN"):
        return "zh-CN", "催收通知函"
    if validation_notice:
        return "en-US", "Validation Notice"
    return "en-US", "Notice About Your Account"


def letter_date(day: date, locale: str) -> str:
    """Return a letter's date as letters in the locale write it."""
    if locale.startswith("zh"):
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day:%B} {day.day}, {day.year}"


def _is_wide(character: str) -> bool:
    return unicodedata.east_asian_width(character) in ("W", "F")


def _tokens(paragraph: str) -> list[str]:
    """Split a paragraph into what a line may break between: CJK characters, Latin words."""
    tokens: list[str] = []
    word = ""
    for character in paragraph:
        if _is_wide(character):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(character)
        elif character == " ":
            if word:
                tokens.append(word)
                word = ""
            tokens.append(" ")
        else:
            word += character
    if word:
        tokens.append(word)
    return tokens


# Punctuation that must not start a line (it joins the line before, as Chinese typesetting does).
_NO_LINE_START = frozenset("，。、；：！？）」』》〉,.;:!?)%")


def wrap(text: str, *, width: Callable[[str], float], max_width: float) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width`` (by ``width``), paragraph by
    paragraph: between CJK characters anywhere, between Latin words at spaces, a word longer
    than a line by character; closing punctuation never starts a line."""
    lines: list[str] = []
    for paragraph in text.replace("\r\n", "\n").split("\n"):
        line = ""
        for token in _tokens(paragraph):
            if token == " ":
                line += " " if line else ""
                continue
            candidate = line + token
            if width(candidate) <= max_width or (token in _NO_LINE_START and line.strip()):
                line = candidate
                continue
            if line.strip():
                lines.append(line.rstrip())
                line = ""
            if width(token) <= max_width:
                line = token
                continue
            for character in token:  # a word longer than a line
                if line and width(line + character) > max_width:
                    lines.append(line)
                    line = ""
                line += character
        lines.append(line.rstrip())
    return lines


def manifest_rows(rows: Sequence[dict[str, object]]) -> list[list[str]]:
    """Return the manifest's header and rows, spreadsheet-safe."""
    return [list(MANIFEST_COLUMNS)] + [
        [safe_cell(row.get(column)) for column in MANIFEST_COLUMNS] for row in rows
    ]
