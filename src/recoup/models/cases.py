"""Collection cases, their history, queues, and agents' capacity and skills."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin, TimestampMixin


class Case(TenantMixin, TimestampMixin, Base):
    """One debtor's delinquent accounts at one institution, worked as one piece of work."""

    __tablename__ = "cases"
    __table_args__ = (
        # At most one live case per debtor: ``live_debtor_id`` is the debtor while the case is
        # live and NULL once closed (NULLs never collide in a unique key).
        UniqueConstraint("institution_id", "live_debtor_id"),
        Index("ix_cases_institution_state", "institution_id", "state"),
        Index("ix_cases_institution_owner", "institution_id", "owner_id", "allocated_on"),
    )

    id: Mapped[IdPk]
    debtor_id: Mapped[int] = mapped_column(
        Id, ForeignKey("debtors.id", ondelete="RESTRICT"), index=True
    )
    live_debtor_id: Mapped[int | None] = mapped_column(Id)
    state: Mapped[str] = mapped_column(String(16), default="open")
    reason: Mapped[str | None] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    owner_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    # The day allocation last put the case on its owner's worklist (their work for that day).
    allocated_on: Mapped[date | None]
    queue_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("queues.id", ondelete="SET NULL"), index=True
    )
    # What allocation weighs: the cases's expected recovery (score × balance), minor units.
    expected_recovery: Mapped[int] = mapped_column(Minor, default=0)
    priority: Mapped[int] = mapped_column(default=0)
    refusals: Mapped[int] = mapped_column(default=0)
    # CN-OUT: the debtor was told the case may pass to an outside agency.
    outsourcing_notice_sent_on: Mapped[date | None]


class CaseAccount(TenantMixin, Base):
    """An account's membership of a case, from when it joined to when it left."""

    __tablename__ = "case_accounts"
    __table_args__ = (UniqueConstraint("case_id", "account_id"),)

    id: Mapped[IdPk]
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    added_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class CaseEvent(TenantMixin, Base):
    """One change of a case — state, owner or queue — with who, when and why; never deleted."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_at", "case_id", "at"),)

    id: Mapped[IdPk]
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="RESTRICT"))
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(16))
    from_owner_id: Mapped[int | None] = mapped_column(Id)
    to_owner_id: Mapped[int | None] = mapped_column(Id)
    note: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


class Queue(TenantMixin, TimestampMixin, Base):
    """A named pool of cases by bucket, product, skill and region, worked by its members."""

    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[IdPk]
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    # Lower runs first when a case matches several queues.
    rank: Mapped[int] = mapped_column(default=100)
    buckets: Mapped[list[str]] = mapped_column(JSON, default=list)
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    provinces: Mapped[list[str]] = mapped_column(JSON, default=list)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    work: Mapped[str] = mapped_column(String(8), default="call")
    active: Mapped[bool] = mapped_column(default=True)


class QueueMember(TenantMixin, Base):
    """An agent who works a queue."""

    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "user_id"),)

    id: Mapped[IdPk]
    queue_id: Mapped[int] = mapped_column(Id, ForeignKey("queues.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)


class AgentProfile(TenantMixin, TimestampMixin, Base):
    """What an agent can take on: cases a day, skills, languages and regions for visits."""

    __tablename__ = "agent_profiles"

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(
        Id, ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    daily_capacity: Mapped[int] = mapped_column(default=60)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    efficiency: Mapped[float] = mapped_column(default=1.0)


class AgentAbsence(TenantMixin, Base):
    """Days an agent is away (leave, training, holiday): no work is allocated to them."""

    __tablename__ = "agent_absences"
    __table_args__ = (Index("ix_agent_absences_user_days", "user_id", "starts_on", "ends_on"),)

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    reason: Mapped[str] = mapped_column(String(64), default="leave")
