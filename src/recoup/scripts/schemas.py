"""API shapes of call scripts: the library, a suggestion for a case, the comparison by script."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class ScriptRead(BaseModel):
    """A call script with its situation, text, guidance and review state."""

    id: int
    name: str
    situation: str | None
    locale: str
    audience: str
    channel: str
    body: str
    guidance: list[str] = Field(description="The agent's de-escalation guidance, point by point")
    status: str
    re_review_on: date | None


class ScriptSuggestionRead(BaseModel):
    """The script suggested for a case, rendered for it, and why."""

    case_id: int
    situation: str
    reason: str = Field(description="Why this situation: wrong_number, disputed, opening, …")
    locale: str
    script_id: int | None
    script_name: str | None
    text: str | None = Field(description="The approved script rendered for the case")
    guidance: list[str]
    missing: str | None = Field(
        description="no_script (none approved for the situation and language) or "
        "not_rendered (see problem)"
    )
    problem: str | None


class ScriptPerformanceRead(BaseModel):
    """What the contacts made with one script brought over a period."""

    script_id: int
    name: str
    situation: str | None
    locale: str
    status: str
    attempts: int
    right_party: int
    promises: int
    promises_resolved: int
    promises_kept: int
    disputes: int
    complaints: int
    promise_rate: float | None = Field(description="Promises ÷ conversations with the debtor")
    kept_rate: float | None = Field(description="Kept ÷ resolved promises made with the script")
    dispute_rate: float | None = Field(description="Disputes ÷ attempts")
    complaint_rate: float | None = Field(description="Complaints within a week ÷ attempts")
