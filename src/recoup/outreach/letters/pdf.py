"""Draw letters as PDF with ReportLab, in a CJK font embedded in the file.

The font is a TrueType font with Chinese glyphs found on the machine: WenQuanYi Micro Hei
from Debian's ``fonts-wqy-microhei`` (``scripts/_setup.sh`` installs it), or the file named by
``RECOUP_LETTER_FONT``. ReportLab embeds the glyphs used, so the PDF prints the same anywhere.
Without such a font nothing is drawn: a letter with missing glyphs would be unreadable.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import ClassVar

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from recoup.kit.errors import RecoupError
from recoup.outreach.letters.rules import LetterContent, letter_date, wrap

FONT_ENV = "RECOUP_LETTER_FONT"
FONT_NAME = "RecoupCJK"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
MARGIN = 22 * mm
BODY_SIZE = 11
LEADING = 18


class LetterFontMissing(RecoupError):
    """No font with Chinese glyphs is installed, so letters cannot be drawn."""

    status_code: ClassVar[int] = 503
    title: ClassVar[str] = "Service unavailable"


def font_path() -> Path:
    """Return the CJK font letters are drawn in; refuse clearly when there is none."""
    named = os.environ.get(FONT_ENV)
    candidates = [named] if named else list(FONT_CANDIDATES)
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise LetterFontMissing(
        f"no font with Chinese glyphs for letters: install one "
        f"(apt-get install fonts-wqy-microhei) or set {FONT_ENV} to a TrueType font file"
        + (f" (not found: {named})" if named else "")
    )


@cache
def _register(path: str) -> str:
    pdfmetrics.registerFont(TTFont(FONT_NAME, path, subfontIndex=0))
    return FONT_NAME


def _width(font: str, size: float) -> Callable[[str], float]:
    def measure(text: str) -> float:
        return float(pdfmetrics.stringWidth(text, font, size))

    return measure


def _footer(canvas: Canvas, font: str, content: LetterContent, page: int) -> None:
    width, _height = A4
    canvas.setFont(font, 8)
    label = f"第 {page} 页" if content.locale.startswith("zh") else f"Page {page}"
    canvas.drawString(MARGIN, 12 * mm, content.reference)
    canvas.drawRightString(width - MARGIN, 12 * mm, label)


def _draw(canvas: Canvas, font: str, content: LetterContent) -> int:
    """Draw one letter from a fresh page; return how many pages it took."""
    width, height = A4
    text_width = width - 2 * MARGIN
    measure = _width(font, BODY_SIZE)
    page = 1
    y = height - MARGIN
    canvas.setFont(font, 10)
    for line in (content.sender_name, content.sender_address, content.sender_phone):
        if line:
            canvas.drawString(MARGIN, y, line)
            y -= 14
    canvas.drawRightString(
        width - MARGIN, height - MARGIN, letter_date(content.day, content.locale)
    )
    y -= 16
    canvas.setFont(font, 12)
    canvas.drawString(MARGIN, y, content.recipient_name)
    y -= 16
    canvas.setFont(font, 10)
    for line in wrap(content.recipient_address, width=_width(font, 10), max_width=text_width / 2):
        canvas.drawString(MARGIN, y, line)
        y -= 14
    y -= 18
    canvas.setFont(font, 16)
    canvas.drawCentredString(width / 2, y, content.title)
    y -= 30
    canvas.setFont(font, BODY_SIZE)
    for line in wrap(content.body, width=measure, max_width=text_width):
        if y < MARGIN + 10 * mm:
            _footer(canvas, font, content, page)
            canvas.showPage()
            page += 1
            y = height - MARGIN
            canvas.setFont(font, BODY_SIZE)
        canvas.drawString(MARGIN, y, line)
        y -= LEADING
    _footer(canvas, font, content, page)
    canvas.showPage()
    return page


def render(letters: Sequence[LetterContent], *, title: str) -> tuple[bytes, list[int]]:
    """Return one PDF holding every letter (each from a new page) and each letter's page count."""
    font = _register(str(font_path()))
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor("Recoup")
    pages = [_draw(canvas, font, content) for content in letters]
    if not letters:
        canvas.showPage()
    canvas.save()
    return buffer.getvalue(), pages
