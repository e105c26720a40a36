"""The daily cycle: its runs, the ledger of stages each run finished, and the day's actions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class CycleRun(TenantMixin, TimestampMixin, Base):
    """One institution's cycle for one day: what it did, stage by stage, and how long it took."""

    __tablename__ = "cycle_runs"
    __table_args__ = (UniqueConstraint("institution_id", "as_of"),)

    id: Mapped[IdPk]
    as_of: Mapped[date]
    # running, completed, failed
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # Seconds spent in the stages, over every attempt (a resumed run adds up).
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # How many times the run was started (1 unless it was interrupted and resumed).
    attempts: Mapped[int] = mapped_column(default=1)
    tasks_created: Mapped[int] = mapped_column(default=0)
    messages_queued: Mapped[int] = mapped_column(default=0)
    # Rule id → how many of the day's actions the gate blocked citing it.
    blocked_by_rule: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(128))


class CycleStage(TenantMixin, Base):
    """A stage a run finished: written in the same transaction as the stage's own changes."""

    __tablename__ = "cycle_stages"
    __table_args__ = (UniqueConstraint("run_id", "stage"),)

    id: Mapped[IdPk]
    run_id: Mapped[int] = mapped_column(Id, ForeignKey("cycle_runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(32))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    finished_at: Mapped[datetime]


class CycleAction(TenantMixin, Base):
    """The next action the cycle chose for a live case on a day, the gate's answer and hand-off.

    One row per case and day: re-running the day finds it and creates nothing new.
    """

    __tablename__ = "cycle_actions"
    __table_args__ = (
        UniqueConstraint("run_id", "case_id"),
        Index("ix_cycle_actions_run_status", "run_id", "status"),
    )

    id: Mapped[IdPk]
    run_id: Mapped[int] = mapped_column(Id, ForeignKey("cycle_runs.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"))
    debtor_id: Mapped[int] = mapped_column(Id, ForeignKey("debtors.id", ondelete="RESTRICT"))
    # The account the action is about: the case's account with the highest priority.
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    queue_id: Mapped[int | None] = mapped_column(Id)
    case_state: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str] = mapped_column(String(64))
    # Where the case is on its treatment path and why (strategy code and version, or the
    # segment's working channel while no strategy is active).
    strategy: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    # The message template or call script the strategy's step names (None without one).
    template: Mapped[str | None] = mapped_column(String(128))
    # task (an agent calls or visits) or message (a machine sends or dials)
    kind: Mapped[str | None] = mapped_column(String(8))
    planned_at: Mapped[datetime | None]
    # segmented → stepped → planned → allowed | blocked | none → handed_off
    status: Mapped[str] = mapped_column(String(16), default="segmented")
    rule_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision_id: Mapped[int | None] = mapped_column(Id)
    next_allowed_at: Mapped[datetime | None]
