"""Webhooks: institutions' subscriptions, the events Recoup emits and each delivery of one."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.kit.clock import utcnow
from recoup.kit.crypto import Encrypted
from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its first try
    retrying = "retrying"  # a try failed; the next is scheduled
    delivered = "delivered"  # the receiver answered 2xx
    dead = "dead"  # every try failed: a dead letter, replayed by hand


class WebhookSubscription(TenantMixin, TimestampMixin, Base):
    """Where an institution wants events sent, which ones, and the secret that signs them."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[IdPk]
    url: Mapped[str] = mapped_column(String(512))
    # Event types ("payment.received", …); shown when the subscription is listed.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Shown once when created; kept encrypted, read only to sign deliveries.
    secret: Mapped[str] = mapped_column(Encrypted("webhook_subscriptions.secret"))
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(128))


class WebhookEvent(TenantMixin, Base):
    """One event, written in the transaction of the change it reports (ids only, no PII)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("event_id"),)

    id: Mapped[IdPk]
    # The id receivers de-duplicate on (a UUID), sent as ``Recoup-Event-Id``.
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(TenantMixin, TimestampMixin, Base):
    """One event on its way to one subscription: its tries, its last answer, its standing."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_webhook_deliveries_institution_status", "institution_id", "status"),
    )

    id: Mapped[IdPk]
    event_id: Mapped[int] = mapped_column(
        Id, ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[int] = mapped_column(
        Id, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
