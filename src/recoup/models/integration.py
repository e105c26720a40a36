"""Integration: stored answers to idempotent API writes, and risk scores other systems send."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.kit.clock import utcnow
from recoup.models.base import Base, Id, IdPk, TenantMixin


class IdempotencyRecord(Base):
    """One ``Idempotency-Key`` a caller used: what it was sent with and what it was answered.

    The row is inserted before the write it guards and filled with the answer in the same
    transaction, so it exists only if that write committed; a second request with the key
    waits on the unique index until the first one ends, then replays its answer.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("caller", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[IdPk]
    # None for a platform administrator's calls.
    institution_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    # Who used the key: "api_key:<id>" or "user:<id>", within the institution.
    caller: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of method, path, query and canonical body: the same key with another → 422.
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExternalRiskScore(TenantMixin, Base):
    """A score another system (a risk engine, a bureau) gave an account, kept as a feature.

    One row per account, source and scoring time: the newest per source is the one that
    counts; older ones stay as history.
    """

    __tablename__ = "external_risk_scores"
    __table_args__ = (
        UniqueConstraint("account_id", "source", "scored_at"),
        Index("ix_external_risk_scores_account_source", "account_id", "source", "scored_at"),
    )

    id: Mapped[IdPk]
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("accounts.id", ondelete="CASCADE"))
    # Who scored it, e.g. "bureau", "fraud-engine" (lower case, a code).
    source: Mapped[str] = mapped_column(String(32))
    score: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    # The band or grade the source gave, if any (e.g. "B2").
    grade: Mapped[str | None] = mapped_column(String(16))
    reason_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    scored_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by: Mapped[str] = mapped_column(String(128))
