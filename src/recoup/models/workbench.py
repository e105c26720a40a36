"""The collector's workbench: promises to pay (cases, queues and plans join later)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from recoup.contact.channels import Channel
from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin, TimestampMixin


class PromiseStatus(StrEnum):
    pending = "pending"
    kept = "kept"
    partially_kept = "partially_kept"
    broken = "broken"
    cancelled = "cancelled"


class Promise(TenantMixin, TimestampMixin, Base):
    """A debtor's promise to pay an amount on an account by a date, and what came of it."""

    __tablename__ = "promises"
    __table_args__ = (
        Index("ix_promises_institution_account_due", "institution_id", "account_id", "due_date"),
        Index("ix_promises_institution_status_due", "institution_id", "status", "due_date"),
    )

    id: Mapped[IdPk]
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("accounts.id", ondelete="RESTRICT"))
    debtor_id: Mapped[int] = mapped_column(
        Id, ForeignKey("debtors.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    promised_on: Mapped[date]
    due_date: Mapped[date]
    # How the promise was made: on a call, a visit, a reply, or the self-service page (web).
    channel: Mapped[Channel] = mapped_column(String(16))
    status: Mapped[PromiseStatus] = mapped_column(String(16), default=PromiseStatus.pending)
    # What the payments in the promise's window paid toward it (capped at nothing: overpay shows).
    paid_amount: Mapped[int] = mapped_column(Minor, default=0)
    resolved_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
