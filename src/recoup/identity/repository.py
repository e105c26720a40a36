"""Queries for users, API keys and sign-in attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from recoup.kit.clock import aware
from recoup.models.identity import ApiKey, LoginAttempt, User


def get_user_by_username(session: Session, username: str) -> User | None:
    """Return the user called ``username``, or ``None``."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def get_user(session: Session, user_id: int) -> User | None:
    """Return the user with ``user_id``, or ``None``."""
    return session.get(User, user_id)


def users_statement(*, institution_id: int | None) -> Select[User]:
    """Return the query for users of one institution (everyone when ``institution_id`` is None)."""
    statement = select(User).order_by(User.username)
    if institution_id is not None:
        statement = statement.where(User.institution_id == institution_id)
    return statement


def list_users(
    session: Session, *, institution_id: int | None, offset: int = 0, limit: int | None = None
) -> tuple[list[User], int]:
    """Return one page of users and how many there are in all."""
    statement = users_statement(institution_id=institution_id)
    total = session.execute(
        select(func.count()).select_from(statement.order_by(None).subquery())
    ).scalar_one()
    if limit is not None:
        statement = statement.offset(offset).limit(limit)
    return list(session.execute(statement).scalars()), total


def get_api_key_by_prefix(session: Session, prefix: str) -> ApiKey | None:
    """Return the API key whose public prefix is ``prefix``, or ``None``."""
    return session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()


def list_api_keys(session: Session, *, institution_id: int | None) -> list[ApiKey]:
    """Return the API keys of one institution (all when it is None), newest first."""
    statement = select(ApiKey).order_by(ApiKey.id.desc())
    if institution_id is not None:
        statement = statement.where(ApiKey.institution_id == institution_id)
    return list(session.execute(statement).scalars())


def add_login_attempt(
    session: Session, *, username: str, ip: str, succeeded: bool, at: datetime
) -> None:
    """Store one sign-in attempt."""
    session.add(
        LoginAttempt(username=username[:64], ip=ip[:64], succeeded=succeeded, attempted_at=at)
    )
    session.flush()


def failures_since(
    session: Session, *, since: datetime, username: str | None = None, ip: str | None = None
) -> Sequence[datetime]:
    """Return the times of failed attempts since ``since`` for a username or an address.

    A successful sign-in of the username clears its earlier failures.
    """
    statement = select(LoginAttempt.attempted_at).where(
        LoginAttempt.attempted_at >= since, LoginAttempt.succeeded.is_(False)
    )
    if username is not None:
        statement = statement.where(LoginAttempt.username == username)
        last_success = session.execute(
            select(func.max(LoginAttempt.attempted_at)).where(
                LoginAttempt.username == username,
                LoginAttempt.succeeded.is_(True),
                LoginAttempt.attempted_at >= since,
            )
        ).scalar_one_or_none()
        if last_success is not None:
            statement = statement.where(LoginAttempt.attempted_at > last_success)
    if ip is not None:
        statement = statement.where(LoginAttempt.ip == ip)
    return [aware(moment) for moment in session.execute(statement).scalars()]


def attempts_since(session: Session, *, ip: str, since: datetime) -> int:
    """Count the sign-in attempts, of any outcome, from ``ip`` since ``since``."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.ip == ip, LoginAttempt.attempted_at >= since)
        )
        or 0
    )


def prune_login_attempts(session: Session, *, before: datetime) -> int:
    """Delete sign-in attempts older than ``before``; return how many went."""
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def count_active_admins(session: Session, *, institution_id: int | None) -> int:
    """Return how many active admins an institution has (``None``: the platform admins)."""
    owner = (
        User.institution_id.is_(None)
        if institution_id is None
        else User.institution_id == institution_id
    )
    statement = select(func.count()).where(owner, User.role == "admin", User.active.is_(True))
    return int(session.execute(statement).scalar_one())
