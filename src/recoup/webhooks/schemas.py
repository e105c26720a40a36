"""Webhook API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recoup.kit.schemas import CleanText

EXAMPLE_TYPES = ["payment.received", "promise.broken", "case.closed"]


class SubscriptionCreate(BaseModel):
    """An address to send events to, and which events."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=512,
        examples=["https://crm.example.com/recoup/events"],
        description="https:// address that receives a POST per event (http:// in development)",
    )
    event_types: list[str] = Field(
        min_length=1, max_length=32, examples=[EXAMPLE_TYPES], description="event types to send"
    )
    description: CleanText | None = Field(default=None, max_length=200)


class SubscriptionUpdate(BaseModel):
    """Changes to a subscription; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=512)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=32)
    active: bool | None = None
    description: CleanText | None = Field(default=None, max_length=200)


class SubscriptionRead(BaseModel):
    """A subscription as listed (its secret is never shown again)."""

    id: int
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_by: str
    created_at: datetime


class SubscriptionWithSecret(SubscriptionRead):
    """A subscription with its signing secret: answered once, when created or rotated."""

    secret: str = Field(
        description="Signs every delivery (Recoup-Signature); store it now, it is not shown again",
        examples=["whsec_3q2+7w…"],
    )


class DeliveryRead(BaseModel):
    """One event's delivery to one subscription."""

    id: int
    subscription_id: int
    url: str
    event_id: str
    event_type: str
    data: dict[str, Any]
    occurred_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class ReplayResult(BaseModel):
    """How many dead letters were sent again."""

    replayed: int
