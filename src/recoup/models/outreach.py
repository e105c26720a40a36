"""Work lists for calls and visits, and what came of each contact on them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin, TimestampMixin


class WorkList(TenantMixin, TimestampMixin, Base):
    """A call list or a visit list, built for one agent or one queue on one day.

    Every entry was put to the gate when the list was built; blocked entries stay on the list
    with their reasons but are never exported or routed.
    """

    __tablename__ = "outreach_work_lists"
    __table_args__ = (Index("ix_outreach_work_lists_institution_kind", "institution_id", "kind"),)

    id: Mapped[IdPk]
    # ``call`` (a dialer's call list) or ``visit`` (a field agent's route).
    kind: Mapped[str] = mapped_column(String(8))
    agent_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(Id, ForeignKey("queues.id", ondelete="SET NULL"))
    # The debtor-local day the list is for, in the institution's time zone.
    work_day: Mapped[date]
    built_at: Mapped[datetime]
    built_by: Mapped[str] = mapped_column(String(128))
    allowed: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    # A visit list's route length over district coordinates, in metres (None: no route).
    route_metres: Mapped[int | None] = mapped_column(Integer)


class WorkListEntry(TenantMixin, Base):
    """One case on a work list: the contact point to use and the gate's decision about it."""

    __tablename__ = "outreach_work_list_entries"
    __table_args__ = (Index("ix_outreach_entries_list_position", "work_list_id", "position"),)

    id: Mapped[IdPk]
    work_list_id: Mapped[int] = mapped_column(
        Id, ForeignKey("outreach_work_lists.id", ondelete="CASCADE")
    )
    # Order on the list: priority for calls, the route for visits (blocked entries last).
    position: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="RESTRICT"))
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    contact_point_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_points.id", ondelete="RESTRICT")
    )
    # The gate's dry-run decision when the list was built (it reserves no slot).
    decision_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("compliance_decisions.id", ondelete="RESTRICT")
    )
    allowed: Mapped[bool] = mapped_column(default=False)
    # [{"rule_id", "message_en", "message_zh"}]: why the gate blocked it.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    next_allowed_at: Mapped[datetime | None]
    city: Mapped[str | None] = mapped_column(String(64))
    district: Mapped[str | None] = mapped_column(String(64))
    balance: Mapped[int] = mapped_column(Minor, default=0)
    currency: Mapped[str] = mapped_column(String(3))


class ContactReport(TenantMixin, TimestampMixin, Base):
    """What a dialer or a field agent reported about a call or a visit that happened.

    The report was put to the gate at the time it says the contact happened. One the gate
    would not have allowed is kept, logged as made and flagged as a violation.
    """

    __tablename__ = "outreach_contact_reports"
    __table_args__ = (UniqueConstraint("institution_id", "kind", "external_id"),)

    id: Mapped[IdPk]
    kind: Mapped[str] = mapped_column(String(8))
    # The dialer's call id or the field app's visit id: a repeated report is the same report.
    external_id: Mapped[str] = mapped_column(String(128))
    entry_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("outreach_work_list_entries.id", ondelete="SET NULL")
    )
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    contact_point_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_points.id", ondelete="RESTRICT")
    )
    agent_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    happened_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(24))
    decision_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("compliance_decisions.id", ondelete="RESTRICT")
    )
    attempt_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_attempts.id", ondelete="RESTRICT")
    )
    violation: Mapped[bool] = mapped_column(default=False)
    rule_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A visit's record (CN-REC): the recording's file id in the institution's evidence store.
    record_ref: Mapped[str | None] = mapped_column(String(128))
    notes: Mapped[str | None] = mapped_column(Text)
    reported_by: Mapped[str] = mapped_column(String(128))
