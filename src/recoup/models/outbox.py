"""The outbox: messages waiting to leave or gone, their receipts, and the campaigns behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.contact.channels import Channel
from recoup.kit.crypto import Encrypted
from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin
from recoup.outbox.rules import CampaignStatus, OutboxStatus


class OutboxCampaign(TenantMixin, TimestampMixin, Base):
    """A manager's send of one approved template to a segment of accounts."""

    __tablename__ = "outbox_campaigns"

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(128))
    channel: Mapped[Channel] = mapped_column(String(16))
    template_id: Mapped[int] = mapped_column(
        Id, ForeignKey("compliance_templates.id", ondelete="RESTRICT")
    )
    # The segment: {"bucket": [...], "segment": [...], "grade": [...]} (empty = every account).
    segment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Queueing runs in a job (outbox.queue_campaign): its status, the segment's accounts (N),
    # how many it has been through (n), the last account done (where a retry resumes) and
    # the blocked contacts counted per rule they cite.
    status: Mapped[CampaignStatus] = mapped_column(
        String(16), default=CampaignStatus.QUEUED, server_default=CampaignStatus.QUEUED.value
    )
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_account_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    blocked_by_rule: Mapped[dict[str, int]] = mapped_column(JSON, default=dict, server_default="{}")
    created_by: Mapped[str] = mapped_column(String(128))


class OutboxMessage(TenantMixin, TimestampMixin, Base):
    """One message to one contact point: queued with its gate decision, sent exactly once.

    ``send_token`` is set, and committed, before the provider is called: a message found
    *sending* after a crash is reconciled with the provider, never sent blindly again.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("institution_id", "idempotency_key"),
        Index("ix_outbox_messages_status_scheduled_at", "status", "scheduled_at"),
        Index("ix_outbox_messages_provider_message_id", "provider_message_id"),
        Index("ix_outbox_messages_institution_debtor", "institution_id", "debtor_id"),
    )

    id: Mapped[IdPk]
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    contact_point_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contact_points.id", ondelete="RESTRICT")
    )
    channel: Mapped[Channel] = mapped_column(String(16))
    # The gate decision that allowed it (the latest one, when it was rescheduled).
    decision_id: Mapped[int] = mapped_column(
        Id, ForeignKey("compliance_decisions.id", ondelete="RESTRICT")
    )
    campaign_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("outbox_campaigns.id", ondelete="RESTRICT"), index=True
    )
    template_id: Mapped[int] = mapped_column(
        Id, ForeignKey("compliance_templates.id", ondelete="RESTRICT")
    )
    template_version: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(255))
    # The rendered text holds the debtor's name and debt: encrypted like other PII.
    body: Mapped[str] = mapped_column(Encrypted("outbox_messages.body"))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[OutboxStatus] = mapped_column(String(16), default=OutboxStatus.QUEUED)
    scheduled_at: Mapped[datetime]
    # Not sent by then, it expires.
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_token: Mapped[str | None] = mapped_column(String(32))
    sending_since: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Why it failed or was held, in words with no personal data (a status code, a rule id).
    last_error: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(128))


class OutboxReceipt(TenantMixin, Base):
    """A delivery receipt (or a reconciliation) the provider gave for a message, kept once."""

    __tablename__ = "outbox_receipts"
    __table_args__ = (UniqueConstraint("message_id", "provider_status"),)

    id: Mapped[IdPk]
    message_id: Mapped[int] = mapped_column(
        Id, ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True
    )
    provider_status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime]
