"""Payment plans and their instalments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin, TimestampMixin


class PaymentPlan(TenantMixin, TimestampMixin, Base):
    """An agreement to settle an account's balance in instalments, maybe at a discount."""

    __tablename__ = "payment_plans"
    __table_args__ = (
        Index("ix_payment_plans_institution_account", "institution_id", "account_id"),
        Index("ix_payment_plans_institution_status", "institution_id", "status"),
    )

    id: Mapped[IdPk]
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("accounts.id", ondelete="RESTRICT"))
    debtor_id: Mapped[int] = mapped_column(
        Id, ForeignKey("debtors.id", ondelete="RESTRICT"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    # The balance the plan settles, the discount granted, and what the debtor agreed to pay.
    balance: Mapped[int] = mapped_column(Minor)
    discount: Mapped[int] = mapped_column(Minor, default=0)
    total: Mapped[int] = mapped_column(Minor)
    down_payment: Mapped[int] = mapped_column(Minor, default=0)
    instalment_count: Mapped[int]
    frequency: Mapped[str] = mapped_column(String(16))
    start_on: Mapped[date]
    # pending_approval, active, completed, broken, cancelled, rejected
    status: Mapped[str] = mapped_column(String(20))
    # How the payments stand against the schedule: on_track, late, broken, completed.
    standing: Mapped[str] = mapped_column(String(16), default="on_track")
    paid_amount: Mapped[int] = mapped_column(Minor, default=0)
    overdue_amount: Mapped[int] = mapped_column(Minor, default=0)
    needs_approval: Mapped[bool] = mapped_column(default=False)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(128))
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    note: Mapped[str | None] = mapped_column(String(500))
    resolved_at: Mapped[datetime | None]


class PlanInstalment(TenantMixin, Base):
    """One amount a plan falls due on one date (number 0 is the down payment)."""

    __tablename__ = "plan_instalments"
    __table_args__ = (UniqueConstraint("plan_id", "number"),)

    id: Mapped[IdPk]
    plan_id: Mapped[int] = mapped_column(
        Id, ForeignKey("payment_plans.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    due_on: Mapped[date]
    amount: Mapped[int] = mapped_column(Minor)
