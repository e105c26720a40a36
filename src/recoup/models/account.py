"""Accounts (the debts), payments and the delinquency history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recoup.enums import AccountStatus, PaymentChannel, Product
from recoup.models.base import Base, Id, IdPk, Minor, TenantMixin, TimestampMixin
from recoup.models.debtor import Debtor


class Account(TenantMixin, TimestampMixin, Base):
    """One debt of a debtor, with its balance split by component."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("institution_id", "external_id"),
        Index("ix_accounts_institution_bucket", "institution_id", "bucket"),
    )

    id: Mapped[IdPk]
    external_id: Mapped[str] = mapped_column(String(64))
    debtor_id: Mapped[int] = mapped_column(
        Id, ForeignKey("debtors.id", ondelete="RESTRICT"), index=True
    )
    product: Mapped[Product] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))
    credit_limit: Mapped[int | None] = mapped_column(Minor)
    principal: Mapped[int] = mapped_column(Minor, default=0)
    interest: Mapped[int] = mapped_column(Minor, default=0)
    fees: Mapped[int] = mapped_column(Minor, default=0)
    penalty: Mapped[int] = mapped_column(Minor, default=0)
    minimum_due: Mapped[int] = mapped_column(Minor, default=0)
    overdue_amount: Mapped[int] = mapped_column(Minor, default=0)
    due_date: Mapped[date | None]
    days_past_due: Mapped[int] = mapped_column(default=0)
    bucket: Mapped[str] = mapped_column(String(4), default="M0")
    status: Mapped[AccountStatus] = mapped_column(String(16), default=AccountStatus.current)
    opened_on: Mapped[date | None]
    charged_off_on: Mapped[date | None]
    # Regulation F validation facts are per debt (US-VAL), as is the limitation date (US-SOL).
    initial_communication_on: Mapped[date | None]
    validation_notice_sent_on: Mapped[date | None]
    time_barred_on: Mapped[date | None]

    debtor: Mapped[Debtor] = relationship(lazy="raise")

    @property
    def balance(self) -> int:
        """Total outstanding in minor units."""
        return self.principal + self.interest + self.fees + self.penalty


class Payment(TenantMixin, TimestampMixin, Base):
    """Money received against an account and how it was applied."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("institution_id", "external_id"),
        # Collections by period (KPIs, aggregates, reconciliation windows) read payments by time.
        Index("ix_payments_institution_paid_at", "institution_id", "paid_at"),
        # Accounts with a payment reversed since a day (KPIs read from the daily snapshot): without
        # it, finding them read every payment of the institution.
        Index("ix_payments_institution_reversed_at", "institution_id", "reversed_at"),
    )

    id: Mapped[IdPk]
    external_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[int] = mapped_column(Minor)
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[datetime]
    channel: Mapped[PaymentChannel] = mapped_column(String(16), default=PaymentChannel.other)
    applied_penalty: Mapped[int] = mapped_column(Minor, default=0)
    applied_fees: Mapped[int] = mapped_column(Minor, default=0)
    applied_interest: Mapped[int] = mapped_column(Minor, default=0)
    applied_principal: Mapped[int] = mapped_column(Minor, default=0)
    unapplied: Mapped[int] = mapped_column(Minor, default=0)
    # The account's delinquency state this payment found: the snapshot a backdated
    # payment replays from (NULL for rows written before payments kept it).
    overdue_before: Mapped[int | None] = mapped_column(Minor)
    days_past_due_before: Mapped[int | None]
    status_before: Mapped[AccountStatus | None] = mapped_column(String(16))
    # Reversed by the core system (a bounced cheque, a repayment undone): kept, but no longer
    # money received — balances, promises, plans and KPIs count only payments not reversed.
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str | None] = mapped_column(String(255))


class DelinquencyEvent(TenantMixin, Base):
    """One change of an account's bucket or status; history is never deleted."""

    __tablename__ = "delinquency_events"
    __table_args__ = (
        Index("ix_delinquency_events_account_effective", "account_id", "effective_at"),
        # Accounts whose state changed since a day (KPIs read from the daily snapshot).
        Index("ix_delinquency_events_institution_effective", "institution_id", "effective_at"),
    )

    id: Mapped[IdPk]
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("accounts.id", ondelete="RESTRICT"))
    effective_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    days_past_due: Mapped[int]
    bucket: Mapped[str] = mapped_column(String(4))
    status: Mapped[AccountStatus] = mapped_column(String(16))
    balance: Mapped[int] = mapped_column(Minor)
    cause: Mapped[str] = mapped_column(String(32))  # import, payment, cycle, correction, reversal
    # A backdated event supersedes the later events it recomputed; they stay for the record.
    superseded: Mapped[bool] = mapped_column(default=False)
    # The payment whose effect this is (payment/correction events), so a backdated
    # payment supersedes exactly the events of the payments it replays.
    payment_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("payments.id", ondelete="RESTRICT")
    )
