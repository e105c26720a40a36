"""Queries of agent certificates and the agents holding them, scoped by institution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models.compliance import (
    Certification,
)
from recoup.models.identity import Role, User


def certifications_valid_on(
    session: Session, *, institution_id: int, user_id: int, on: date
) -> Sequence[Certification]:
    """Return a user's certificates still valid on a date."""
    return (
        session.execute(
            select(Certification).where(
                Certification.institution_id == institution_id,
                Certification.user_id == user_id,
                Certification.issued_on <= on,
                Certification.expires_on >= on,
            )
        )
        .scalars()
        .all()
    )


def certifications_expiring(
    session: Session, *, institution_id: int, before: date, on: date
) -> Sequence[Certification]:
    """Return certificates valid on a date that expire before another."""
    return (
        session.execute(
            select(Certification)
            .where(
                Certification.institution_id == institution_id,
                Certification.expires_on >= on,
                Certification.expires_on < before,
            )
            .order_by(Certification.expires_on)
        )
        .scalars()
        .all()
    )


def institution_agents(
    session: Session, *, institution_id: int, team_lead_id: int | None = None
) -> Sequence[User]:
    """Return the institution's active agents, optionally only one team lead's."""
    statement = select(User).where(
        User.institution_id == institution_id, User.role == Role.agent, User.active.is_(True)
    )
    if team_lead_id is not None:
        statement = statement.where(User.team_lead_id == team_lead_id)
    return session.execute(statement.order_by(User.username)).scalars().all()


def certifications_of_users(
    session: Session, *, institution_id: int, user_ids: Sequence[int]
) -> Sequence[Certification]:
    """Return every certificate of the given users, latest expiry first."""
    if not user_ids:
        return []
    return (
        session.execute(
            select(Certification)
            .where(
                Certification.institution_id == institution_id,
                Certification.user_id.in_(user_ids),
            )
            .order_by(Certification.expires_on.desc(), Certification.id.desc())
        )
        .scalars()
        .all()
    )
