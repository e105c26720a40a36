"""Pydantic shapes shared by every API: one page of a list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from pydantic import BaseModel

from recoup.kit.pagination import Page

T = TypeVar("T")
Row = TypeVar("Row")


class Paginated(BaseModel, Generic[T]):
    """One page of a list with the total count and the number of pages."""

    items: list[T]
    total: int
    page: int
    size: int
    pages: int

    @classmethod
    def of(cls, page: Page[Row], shape: Callable[[Row], T]) -> Paginated[T]:
        """Return the API shape of a ``Page``, each item shaped by ``shape``."""
        return cls(
            items=[shape(item) for item in page.items],
            total=page.total,
            page=page.page,
            size=page.size,
            pages=page.pages,
        )
