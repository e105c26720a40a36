"""Pydantic shapes shared by every API: one page of a list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from recoup.kit.clock import supported_day, supported_moment
from recoup.kit.pagination import Page, encode_cursor
from recoup.kit.text import checked_text

T = TypeVar("T")
Row = TypeVar("Row")

# Free text a person writes (names, notes, reasons): the same check imports apply to text.
CleanText = Annotated[str, AfterValidator(checked_text)]
# A moment someone sends: with an offset, within the years Recoup supports.
Moment = Annotated[AwareDatetime, AfterValidator(supported_moment)]
# A calendar day someone sends, within the same years.
Day = Annotated[date, AfterValidator(supported_day)]
# A row id someone sends: a 64-bit integer, like the column it is looked up in.
RowIdField = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Paginated(BaseModel, Generic[T]):
    """One page of a list with the total count and the number of pages."""

    items: list[T]
    total: int
    page: int
    size: int
    pages: int
    next_cursor: str | None = Field(
        default=None,
        description="Where ordered by id: pass as cursor for the rows after this page",
    )

    @classmethod
    def of(cls, page: Page[Row], shape: Callable[[Row], T]) -> Paginated[T]:
        """Return the API shape of a ``Page``, each item shaped by ``shape``."""
        return cls(
            items=[shape(item) for item in page.items],
            total=page.total,
            page=page.page,
            size=page.size,
            pages=page.pages,
            next_cursor=encode_cursor(page.next_after) if page.next_after is not None else None,
        )


class FieldProblem(BaseModel):
    """One field a request got wrong."""

    model_config = ConfigDict(extra="allow")

    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem+json error body; some errors add members such as ``errors``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
