"""Strategies, their versions, and where each case stands on its treatment path."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class Strategy(TenantMixin, TimestampMixin, Base):
    """A named strategy of an institution; its content lives in versions."""

    __tablename__ = "strategies"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[IdPk]
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    # The preset it was copied from (consumer_finance, commercial_bank), if any.
    preset: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128))


class StrategyVersion(TenantMixin, TimestampMixin, Base):
    """One version of a strategy's document: a draft until activated, then never changed."""

    __tablename__ = "strategy_versions"
    __table_args__ = (
        UniqueConstraint("strategy_id", "version"),
        Index("ix_strategy_versions_institution_status", "institution_id", "status"),
    )

    id: Mapped[IdPk]
    strategy_id: Mapped[int] = mapped_column(
        Id, ForeignKey("strategies.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    # The document as written (YAML or JSON), and its SHA-256.
    document: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    # draft, active, retired
    status: Mapped[str] = mapped_column(String(16), default="draft")
    author: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(String(500))
    activated_at: Mapped[datetime | None]
    activated_by: Mapped[str | None] = mapped_column(String(128))
    retired_at: Mapped[datetime | None]


class CaseStrategyState(TenantMixin, Base):
    """Where a case stands on its strategy: version, segment, arm, step, and why.

    One row per case, written in bulk by the daily cycle and at once by event rules
    (``strategy.on_event``).
    """

    __tablename__ = "case_strategy_states"
    __table_args__ = (
        UniqueConstraint("case_id"),
        Index("ix_case_strategy_states_version_segment", "strategy_version_id", "segment", "arm"),
    )

    id: Mapped[IdPk]
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"))
    strategy_version_id: Mapped[int] = mapped_column(
        Id, ForeignKey("strategy_versions.id", ondelete="RESTRICT")
    )
    segment: Mapped[str] = mapped_column(String(32))
    # The experiment arm (champion, control, a challenger's code).
    arm: Mapped[str] = mapped_column(String(32), default="champion")
    # The step code the case is on (or paused, stopped, skip_trace … after an event); None
    # before its path's first day.
    step: Mapped[str | None] = mapped_column(String(48))
    # The day the case entered its segment's path (days on path count from it).
    entered_on: Mapped[date]
    # The day its current step began.
    step_on: Mapped[date | None]
    # Nothing is done before this day (promise due + grace).
    paused_until: Mapped[date | None]
    # Every channel stopped until a person decides (cease, dispute, complaint).
    contact_stopped: Mapped[bool] = mapped_column(default=False)
    # Promises broken in a row (a kept promise resets it).
    broken_promises: Mapped[int] = mapped_column(default=0)
    # Why, in English (logs, the API) and as a code with its values, which pages show in
    # the reader's language (``strategy.reason.<code>``; a ``then`` value holds a second one).
    reason: Mapped[str] = mapped_column(String(255))
    reason_code: Mapped[str] = mapped_column(String(32), default="")
    reason_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What wrote it last: cycle, or the event's name.
    source: Mapped[str] = mapped_column(String(32), default="cycle")
    as_of: Mapped[date]
    updated_at: Mapped[datetime]


class CaseStrategyStep(TenantMixin, Base):
    """A case's step change, kept as history (what the case was told to do, when and why)."""

    __tablename__ = "case_strategy_steps"
    __table_args__ = (Index("ix_case_strategy_steps_case_at", "case_id", "at"),)

    id: Mapped[IdPk]
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"))
    strategy_version_id: Mapped[int] = mapped_column(
        Id, ForeignKey("strategy_versions.id", ondelete="RESTRICT")
    )
    segment: Mapped[str] = mapped_column(String(32))
    arm: Mapped[str] = mapped_column(String(32), default="champion")
    step: Mapped[str | None] = mapped_column(String(48))
    reason: Mapped[str] = mapped_column(String(255))
    reason_code: Mapped[str] = mapped_column(String(32), default="")
    reason_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[date]
    at: Mapped[datetime]
