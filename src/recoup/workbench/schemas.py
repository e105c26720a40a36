"""API shapes of promises to pay: amounts go in as decimal strings and come back both ways."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from recoup.kit.schemas import CleanText

ChannelName = Literal["call", "sms", "email", "visit", "letter", "web"]


class PromiseCreate(BaseModel):
    """A promise as an agent records it; the currency defaults to the account's."""

    amount: str = Field(
        min_length=1,
        max_length=32,
        examples=["1234.56"],
        description="Digits 0-9, '.' and decimals; no sign, spaces or thousands separators",
    )
    due_date: date
    channel: ChannelName
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    note: CleanText | None = Field(default=None, max_length=500)


class PromiseRead(BaseModel):
    """A promise with its amounts as decimal strings and in minor units."""

    id: int
    account_id: int
    debtor_id: int
    amount: str
    amount_minor: int
    currency: str
    paid_amount: str
    paid_amount_minor: int
    promised_on: date
    due_date: date
    channel: str
    status: str
    resolved_at: datetime | None
    created_by: str
    note: str | None


class ReconcileRequest(BaseModel):
    """The date to reconcile promises as of (the institution's today when left out)."""

    as_of: date | None = Field(
        default=None,
        description=(
            "Not after the institution's today (its own time zone, read five minutes ahead for "
            "clock differences) and not before its first promise; otherwise 422"
        ),
    )


class ReconcileRead(BaseModel):
    """What a reconciliation run did."""

    as_of: date
    examined: int
    kept: int
    partially_kept: int
    broken: int
    pending: int
    escalated: int
    escalated_account_ids: list[int]
