"""Users, roles and API clients."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from recoup.models.base import Base, Id, IdPk, TimestampMixin


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    team_lead = "team_lead"
    agent = "agent"
    compliance_officer = "compliance_officer"
    auditor = "auditor"
    data_scientist = "data_scientist"


class User(TimestampMixin, Base):
    """A person who signs in; belongs to one institution (none for a platform admin)."""

    __tablename__ = "users"

    id: Mapped[IdPk]
    institution_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("institutions.id", ondelete="RESTRICT"), index=True
    )
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    team_lead_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    # Bumped to revoke every token and web session the user holds (logout everywhere, role change).
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")


class ApiKey(TimestampMixin, Base):
    """A scoped credential for an integrating system; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[IdPk]
    institution_id: Mapped[int] = mapped_column(
        Id, ForeignKey("institutions.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class LoginAttempt(Base):
    """One sign-in attempt, kept to rate-limit and lock out by username and by address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_attempted_at", "username", "attempted_at"),
        Index("ix_login_attempts_ip_attempted_at", "ip", "attempted_at"),
    )

    id: Mapped[IdPk]
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool]
    attempted_at: Mapped[datetime]
