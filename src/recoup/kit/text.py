"""Free text people and systems send us: one check for imports, the API and forms.

Tabs and line breaks become single spaces; any other control character (NUL included), a
bidirectional override or a byte-order mark is refused, as are lone surrogates (bytes that
were not valid in a file's encoding). Text starting with ``=``, ``+``, ``-`` or ``@`` is refused
rather than altered: a spreadsheet would run it as a formula, and changing it would store
something the sender never wrote.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from recoup.kit.errors import ValidationFailed

MAX_TEXT_LENGTH: Final = 200
FORMULA_PREFIXES: Final = ("=", "+", "-", "@")
BIDI_CONTROLS: Final = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
)


def clean_text(
    value: str, *, max_length: int | None = MAX_TEXT_LENGTH
) -> tuple[str, str | None, str]:
    """Return ``(cleaned, problem code, reason)`` for a free-text value (code ``None`` if fine)."""
    text = value
    if not text.isprintable():
        characters = []
        for character in text:
            if character in "\t\r\n":
                characters.append(" ")
                continue
            category = unicodedata.category(character)
            if category == "Cs":
                return value, "bad_encoding", "bytes that are not valid in the file's encoding"
            if category == "Cc" or character in BIDI_CONTROLS or character == "\ufeff":
                return (
                    value,
                    "control_character",
                    f"control character U+{ord(character):04X} is not allowed",
                )
            characters.append(character)
        text = " ".join("".join(characters).split())
    if max_length is not None and len(text) > max_length:
        return value, "too_long", f"{len(text)} characters; at most {max_length} allowed"
    if text.startswith(FORMULA_PREFIXES):
        return (
            value,
            "formula_injection",
            "text starting with = + - or @ would run as a spreadsheet formula",
        )
    return text, None, ""


def checked_text(value: str) -> str:
    """Return ``value`` cleaned by ``clean_text``; raise ``ValueError`` with the reason if refused.

    The length limit is the caller's (a schema field's), so none is applied here.
    """
    cleaned, code, reason = clean_text(value, max_length=None)
    if code is not None:
        raise ValueError(reason)
    if value and not cleaned.strip():
        raise ValueError("only spaces and line breaks; write some text")
    return cleaned


def require_text(field: str, value: str, *, multiline: bool = False) -> str:
    """Return ``value`` as ``checked_text`` does, or refuse it naming ``field`` (a service check).

    ``multiline`` keeps the text as written (a template body, a letter: line breaks, bullets)
    and refuses only what no one can see: control characters and direction overrides.
    """
    try:
        if multiline:
            for line in value.replace("\r\n", "\n").split("\n"):
                _cleaned, code, reason = clean_text(line.replace("\t", " "), max_length=None)
                if code in {"control_character", "bad_encoding"}:
                    raise ValueError(reason)
            return value
        return checked_text(value)
    except ValueError as error:
        raise ValidationFailed(
            f"{field}: {error}", errors=[{"field": field, "message": str(error)}]
        ) from None
