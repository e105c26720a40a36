"""API shapes of the contact log: attempts as read (PII masked) and inbound contacts logged."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode, Party
from recoup.kit.schemas import Moment, RowIdField


class OutcomeMeaningRead(BaseModel):
    """What an outcome code counts as."""

    reached: bool
    right_party: bool
    third_party: bool
    conversation: bool
    effective: bool
    failed_to_reach: bool
    refused_contact: bool


class ContactAttemptRead(BaseModel):
    """One row of a debtor's contact log, with the contact point's value masked."""

    id: int
    debtor_id: int
    account_id: int | None
    account_external_id: str | None
    contact_point_id: int | None
    contact_point: str | None = Field(description="The contact point's value, masked")
    channel: str
    party: str
    direction: str
    status: str
    outcome: str | None
    meaning: OutcomeMeaningRead | None
    effective: bool
    decision_id: int | None
    planned_at: datetime | None
    expires_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    agent: str | None
    actor: str
    provider_message_id: str | None
    script_id: int | None = Field(default=None, description="The approved call script used")


class InboundContactCreate(BaseModel):
    """A contact the debtor or a contact person started: a call in, a reply, a web visit."""

    channel: Channel
    started_at: Moment
    outcome: OutcomeCode | None = None
    party: Party = Party.DEBTOR
    contact_point_id: RowIdField | None = None
    account_id: RowIdField | None = None
    ended_at: Moment | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    provider_message_id: str | None = Field(default=None, max_length=128)
    script_id: RowIdField | None = Field(
        default=None, description="The approved call script the agent used (from the library)"
    )
