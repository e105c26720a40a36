"""Compliance records: gate decisions, slots, policies, templates, violations, certificates.

The contact a decision allows is a planned row of the contact log (``models/contact.py``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.enums import ScriptSituation
from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class ContactDecision(TenantMixin, TimestampMixin, Base):
    """One answer of the contact gate, allowed or blocked, with its inputs and evidence."""

    __tablename__ = "compliance_decisions"
    __table_args__ = (
        Index("ix_compliance_decisions_institution_debtor", "institution_id", "debtor_id"),
        Index("ix_compliance_decisions_institution_created", "institution_id", "created_at"),
        # The daily refresh reads the decisions planned in its look-back days: without this it
        # read every decision the institution ever had (800,000 a day at a million accounts).
        Index("ix_compliance_decisions_institution_planned", "institution_id", "planned_at"),
    )

    id: Mapped[IdPk]
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    contact_point_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_points.id", ondelete="RESTRICT")
    )
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    channel: Mapped[str] = mapped_column(String(16))
    party: Mapped[str] = mapped_column(String(16))
    planned_at: Mapped[datetime]
    allowed: Mapped[bool]
    rule_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    next_allowed_at: Mapped[datetime | None]
    timezones: Mapped[list[str]] = mapped_column(JSON, default=list)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pack_code: Mapped[str] = mapped_column(String(8))
    pack_version: Mapped[str] = mapped_column(String(32))
    policy_name: Mapped[str] = mapped_column(String(128))
    policy_version: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))


class SlotClaim(TenantMixin, Base):
    """One numbered slot of a frequency cap; the unique key makes a double booking impossible."""

    __tablename__ = "compliance_slot_claims"
    __table_args__ = (UniqueConstraint("institution_id", "debtor_id", "slot_key"),)

    id: Mapped[IdPk]
    # The planned contact attempt holding the slot; cancelling it frees the slot.
    attempt_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contact_attempts.id", ondelete="CASCADE"), index=True
    )
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    slot_key: Mapped[str] = mapped_column(String(128))


class WindowKind(StrEnum):
    agreed = "agreed"
    inconvenient = "inconvenient"


class ContactWindow(TenantMixin, TimestampMixin, Base):
    """A time the debtor agreed to be contacted, or said is inconvenient, in local hours."""

    __tablename__ = "compliance_contact_windows"

    id: Mapped[IdPk]
    debtor_id: Mapped[int] = mapped_column(
        Id, ForeignKey("debtors.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[WindowKind] = mapped_column(String(16))
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    weekdays: Mapped[list[int] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(255))


class CompliancePolicy(TenantMixin, TimestampMixin, Base):
    """One version of an institution's contact policy; the newest approved one is in force."""

    __tablename__ = "compliance_policies"
    __table_args__ = (UniqueConstraint("institution_id", "version"),)

    id: Mapped[IdPk]
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    proposed_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[datetime | None]


class TemplateStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"


class MessageTemplate(TenantMixin, TimestampMixin, Base):
    """A script or message template that must be reviewed and approved before use."""

    __tablename__ = "compliance_templates"
    __table_args__ = (
        Index("ix_compliance_templates_institution_status", "institution_id", "status"),
    )

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(32))
    # A call script (kind "script") is written for one situation and carries short
    # de-escalation guidance for the agent, reviewed together with its text.
    situation: Mapped[ScriptSituation | None] = mapped_column(String(32))
    guidance: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[TemplateStatus] = mapped_column(String(16), default=TemplateStatus.draft)
    author_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="RESTRICT"))
    author: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime | None]
    reviewer_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="RESTRICT"))
    reviewer: Mapped[str | None] = mapped_column(String(128))
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    re_review_on: Mapped[date | None]


class ViolationStatus(StrEnum):
    open = "open"
    confirmed = "confirmed"
    dismissed = "dismissed"


class ComplianceViolation(TenantMixin, TimestampMixin, Base):
    """A finding in an agent's note or transcript, queued for the compliance officer."""

    __tablename__ = "compliance_violations"
    __table_args__ = (
        Index("ix_compliance_violations_institution_status", "institution_id", "status"),
    )

    id: Mapped[IdPk]
    source: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(64))
    debtor_id: Mapped[int | None] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    actor: Mapped[str | None] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[str] = mapped_column(String(16))
    excerpt: Mapped[str] = mapped_column(String(255))
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    status: Mapped[ViolationStatus] = mapped_column(String(16), default=ViolationStatus.open)
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)


class Certification(TenantMixin, TimestampMixin, Base):
    """A compliance training certificate an agent holds, valid until it expires."""

    __tablename__ = "compliance_certifications"
    __table_args__ = (Index("ix_compliance_certifications_user", "institution_id", "user_id"),)

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    course: Mapped[str] = mapped_column(String(128))
    issued_on: Mapped[date]
    expires_on: Mapped[date]
    issued_by: Mapped[str] = mapped_column(String(128))
