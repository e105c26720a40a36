"""Page parameters and page results shared by every list.

A list is read by page number (``page``, ``size``) or, where it is ordered by id, by cursor:
``next_cursor`` names the last row of a page, and asking with ``cursor`` returns the rows
after it — stable while rows are added, and as fast on the millionth page as on the first.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_PAGE_SIZE = 200
# Deep enough for any portfolio, shallow enough that the row offset stays a 64-bit integer.
MAX_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list to return (1-based)."""

    page: int = 1
    size: int = 50
    # Cursor pages: only rows whose id is above this one.
    after: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.page <= MAX_PAGE:
            raise ValueError(f"page must be between 1 and {MAX_PAGE}")
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be between 1 and {MAX_PAGE_SIZE}")

    @property
    def offset(self) -> int:
        return 0 if self.after is not None else (self.page - 1) * self.size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items and the total count."""

    items: list[T]
    total: int
    page: int
    size: int
    # The id of this page's last row when another page may follow (cursor pages).
    next_after: int | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


_CURSOR_PREFIX = "after:"


class BadCursor(ValueError):
    """A cursor this server did not give out."""


def encode_cursor(after: int) -> str:
    """Return the opaque cursor that continues after row id ``after``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Return the row id a cursor continues after; ``BadCursor`` for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor from this list; use next_cursor as given") from None
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 19:
        raise BadCursor("not a cursor from this list; use next_cursor as given")
    return int(number)
