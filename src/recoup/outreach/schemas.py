"""API shapes of work lists and contact reports shared by call lists and visit lists."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from recoup.contact.rules import OutcomeCode
from recoup.kit.schemas import Day, RowIdField

# A dialer's or field app's id of a call or visit: letters, digits and - _ . : only.
ExternalId = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class ReasonRead(BaseModel):
    """Why the gate blocked an entry."""

    rule_id: str
    code: str
    message_en: str
    message_zh: str


class WorkListEntryRead(BaseModel):
    """One case on a list: the contact point (masked), the gate's decision, the place."""

    id: int
    position: int
    case_id: int
    debtor_id: int
    debtor_external_id: str
    account_id: int | None
    contact_point_id: int | None
    contact_point: str | None = Field(description="The phone number or address, masked")
    allowed: bool
    decision_id: int | None
    reasons: list[ReasonRead]
    next_allowed_at: datetime | None
    city: str | None
    district: str | None
    balance_minor: int
    currency: str
    reported: list[str] = Field(description="Outcomes reported so far, oldest first")


class WorkListRead(BaseModel):
    """A call or visit list with its entries; blocked entries last."""

    id: int
    kind: str
    agent_id: int | None
    queue_id: int | None
    work_day: date
    built_at: datetime
    built_by: str
    allowed: int
    blocked: int
    route_metres: int | None
    entries: list[WorkListEntryRead]


class WorkListCreate(BaseModel):
    """Whose list to build and for which day (an agent builds their own)."""

    agent_id: RowIdField | None = None
    queue: str | None = Field(default=None, min_length=1, max_length=32)
    day: Day | None = Field(
        default=None, description="The institution-local day; today if left out"
    )


class ContactReportRead(BaseModel):
    """What was recorded of a reported call or visit."""

    id: int
    kind: str
    external_id: str
    entry_id: int | None
    debtor_id: int
    happened_at: datetime
    outcome: str
    decision_id: int | None
    attempt_id: int | None
    violation: bool = Field(description="The gate would not have allowed it when it happened")
    rule_ids: list[str]
    record_ref: str | None
    replayed: bool = Field(
        description="True when this id was reported before (nothing new written)"
    )


Outcome = OutcomeCode | Literal["not_made"]
