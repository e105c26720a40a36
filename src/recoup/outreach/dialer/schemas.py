"""API shapes of the dialer: a call result from the dialer, and a call list export."""

from __future__ import annotations

from pydantic import BaseModel, Field

from recoup.kit.schemas import Moment, RowIdField
from recoup.outreach.schemas import ExternalId, Outcome


class CallResultCreate(BaseModel):
    """A dialer's report of one call on a call list (sent again, it is the same report)."""

    call_id: str = ExternalId
    entry_id: RowIdField = Field(description="The call list entry (the CSV's entry_id column)")
    started_at: Moment
    outcome: Outcome
    ended_at: Moment | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)


class CallListExport(BaseModel):
    """Why the numbers are revealed in the export (leave out for masked numbers)."""

    reason: str | None = Field(default=None, min_length=5, max_length=500)
