"""The agent workspace: tasks on a case (call-backs) and the notes agents write on a case."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class CaseTask(TenantMixin, TimestampMixin, Base):
    """Something to do on a case at a time (a call-back the debtor asked for), and when done."""

    __tablename__ = "case_tasks"
    __table_args__ = (
        Index("ix_case_tasks_institution_owner_due", "institution_id", "owner_id", "done_at"),
    )

    id: Mapped[IdPk]
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # callback
    kind: Mapped[str] = mapped_column(String(16), default="callback")
    due_at: Mapped[datetime]
    # The time the debtor asked for, when the gate moved the task to a later allowed time.
    requested_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    owner_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    # The contact that asked for it.
    attempt_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_attempts.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(128))


class CaseNote(TenantMixin, Base):
    """A note an agent wrote on a case, usually about one contact (scanned for violations)."""

    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_notes_case_at", "case_id", "at"),)

    id: Mapped[IdPk]
    case_id: Mapped[int] = mapped_column(Id, ForeignKey("cases.id", ondelete="CASCADE"))
    attempt_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contact_attempts.id", ondelete="SET NULL")
    )
    body: Mapped[str] = mapped_column(String(2000))
    author_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
