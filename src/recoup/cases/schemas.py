"""Case API models."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from recoup.cases.rules import CaseEvent
from recoup.kit.schemas import CleanText


class CaseRead(BaseModel):
    """A case as lists show it."""

    id: int
    debtor_id: int
    state: str
    reason: str | None
    owner_id: int | None
    queue: str | None
    expected_recovery: str
    expected_recovery_minor: int
    priority: int
    opened_at: datetime
    closed_at: datetime | None
    allocated_on: date | None


class CaseAccountRead(BaseModel):
    id: int
    external_id: str
    bucket: str
    status: str
    days_past_due: int
    balance: str
    balance_minor: int
    currency: str


class CaseEventRead(BaseModel):
    event: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    from_owner_id: int | None
    to_owner_id: int | None
    note: str | None
    actor: str
    at: datetime


class CaseDetail(CaseRead):
    """A case with its accounts and its history."""

    accounts: list[CaseAccountRead]
    history: list[CaseEventRead]


class CaseEventCreate(BaseModel):
    """A change of a case's state made by a person, with why."""

    model_config = ConfigDict(extra="forbid")

    event: CaseEvent
    note: CleanText = Field(min_length=1, max_length=500)


class CaseOwnerUpdate(BaseModel):
    """Give a case to an agent (or to nobody), with why."""

    model_config = ConfigDict(extra="forbid")

    owner_id: int | None = Field(ge=1, le=2**63 - 1)
    note: CleanText | None = Field(default=None, max_length=500)
