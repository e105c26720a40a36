"""File imports: one row per run and one per rejected field, kept for the data-quality report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recoup.enums import ImportKind, ImportStatus
from recoup.models.base import Base, Id, IdPk, TenantMixin, TimestampMixin


class ImportRun(TenantMixin, TimestampMixin, Base):
    """One import of one file, with its counts; a failed run names why the file was unusable."""

    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_institution_kind", "institution_id", "kind"),)

    id: Mapped[IdPk]
    kind: Mapped[ImportKind] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[ImportStatus] = mapped_column(String(16), default=ImportStatus.running)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    # Rejected rows per reason code, so a summary needs no scan of import_rejects.
    reject_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ignored_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    message: Mapped[str | None] = mapped_column(Text)


class ImportReject(TenantMixin, Base):
    """One problem with one field of one rejected row; the value is masked when it is PII."""

    __tablename__ = "import_rejects"
    __table_args__ = (Index("ix_import_rejects_run_code", "run_id", "code"),)

    id: Mapped[IdPk]
    run_id: Mapped[int] = mapped_column(Id, ForeignKey("import_runs.id", ondelete="CASCADE"))
    row_number: Mapped[int]
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(256))
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
