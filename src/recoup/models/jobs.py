"""Background jobs: the transactional outbox rows the relay hands to the job library."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recoup.kit.clock import utcnow
from recoup.models.base import Base, Id, IdPk, TimestampMixin


class JobStatus(StrEnum):
    pending = "pending"  # committed, not yet handed to the job library
    queued = "queued"  # handed to the job library, waiting for a worker
    retrying = "retrying"  # failed, another try is scheduled
    done = "done"
    dead = "dead"  # failed its last try; an admin may retry it


class Job(TimestampMixin, Base):
    """One job ``domain.verb`` with its payload, enqueued in the transaction that caused it."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("name", "idempotency_key"),
        Index("ix_jobs_status_available_at", "status", "available_at"),
    )

    id: Mapped[IdPk]
    institution_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("institutions.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
