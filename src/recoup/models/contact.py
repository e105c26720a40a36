"""The contact log and each contact point's consent and opt-outs per channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.contact.channels import Channel
from recoup.contact.rules import AttemptStatus, ConsentKind, Direction, Party
from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class ContactAttempt(TenantMixin, TimestampMixin, Base):
    """One contact attempt or message, outbound or inbound: planned, made, cancelled, expired.

    An outbound attempt is created planned when the gate allows it (``decision_id``) and
    holds the gate's cap slots (``compliance_slot_claims``) until it is cancelled. Without an
    account it is about the debtor as a whole.
    """

    __tablename__ = "contact_attempts"
    __table_args__ = (
        Index("ix_contact_attempts_institution_debtor", "institution_id", "debtor_id"),
        Index("ix_contact_attempts_status_expires_at", "status", "expires_at"),
        # KPIs, dashboards and their daily aggregates read the log by when contacts happened.
        Index("ix_contact_attempts_institution_started_at", "institution_id", "started_at"),
    )

    id: Mapped[IdPk]
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    contact_point_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_points.id", ondelete="RESTRICT")
    )
    channel: Mapped[Channel] = mapped_column(String(16))
    party: Mapped[Party] = mapped_column(String(16))
    direction: Mapped[Direction] = mapped_column(String(8), default=Direction.OUTBOUND)
    status: Mapped[AttemptStatus] = mapped_column(String(16), default=AttemptStatus.PLANNED)
    # The gate decision that allowed it; inbound contacts have none.
    decision_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("compliance_decisions.id", ondelete="RESTRICT"), unique=True
    )
    planned_at: Mapped[datetime | None]
    # A channel may act on the decision until then; unreported after it, the attempt expires.
    expires_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # An ``OutcomeCode``; None while planned, when cancelled, or made with no outcome known.
    outcome: Mapped[str | None] = mapped_column(String(24))
    # Counts toward effective-call caps (CN-FREQ-V); true until an outcome says otherwise.
    effective: Mapped[bool] = mapped_column(default=True)
    agent_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    # Who made or reported it: an agent's username or a system ("dialer", "sms-gateway").
    actor: Mapped[str] = mapped_column(String(128))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    # The approved call script the agent used, so scripts' outcomes can be compared.
    script_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("compliance_templates.id", ondelete="RESTRICT"), index=True
    )


class ContactPointConsent(TenantMixin, TimestampMixin, Base):
    """A contact point's consent to, or opt-out of, one channel, with where it came from."""

    __tablename__ = "contact_point_consents"
    __table_args__ = (UniqueConstraint("contact_point_id", "channel", "kind"),)

    id: Mapped[IdPk]
    contact_point_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contact_points.id", ondelete="CASCADE")
    )
    channel: Mapped[Channel] = mapped_column(String(16))
    kind: Mapped[ConsentKind] = mapped_column(String(16))
    # Where it came from (a loan agreement, a reply "STOP", an import) and when it was given.
    source: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime | None]
    recorded_by: Mapped[str] = mapped_column(String(128))
