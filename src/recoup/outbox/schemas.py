"""API shapes of the outbox: messages as read (no personal data) and provider callbacks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class OutboxMessageRead(BaseModel):
    """One message of the outbox: ids, channel, status and timing, never its text or address."""

    id: int
    debtor_id: int
    account_id: int | None
    contact_point_id: int
    channel: str
    status: str
    decision_id: int
    campaign_id: int | None
    template_id: int
    template_version: str
    scheduled_at: datetime
    expires_at: datetime
    attempts: int
    provider_message_id: str | None
    sent_at: datetime | None
    finished_at: datetime | None
    last_error: str | None


class GatewayReceipt(BaseModel):
    """A delivery receipt from the generic SMS gateway."""

    id: str = Field(min_length=1, max_length=128)
    status: str = Field(min_length=1, max_length=32)
    error_code: str | None = Field(default=None, max_length=32)


class GatewayReply(BaseModel):
    """A text a debtor sent back, from the generic SMS gateway."""

    sender: str = Field(alias="from", min_length=1, max_length=64)
    text: str = Field(max_length=2000)
    id: str | None = Field(default=None, max_length=128)
