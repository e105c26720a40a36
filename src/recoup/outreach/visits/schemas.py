"""API shapes of field visits: a visit's result from the field."""

from __future__ import annotations

from pydantic import BaseModel, Field

from recoup.kit.schemas import Moment, RowIdField
from recoup.outreach.schemas import ExternalId, Outcome


class VisitResultCreate(BaseModel):
    """What came of a visit on a visit list (sent again, it is the same report)."""

    visit_id: str = ExternalId
    entry_id: RowIdField = Field(description="The visit list entry")
    visited_at: Moment
    outcome: Outcome
    notes: str | None = Field(default=None, max_length=2000)
    record_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
        description="The visit's recording in the evidence store (required under CN-REC)",
    )
