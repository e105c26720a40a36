"""Queries for institutions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.kit.errors import NotFound
from recoup.models.institution import Institution


def get_by_code(session: Session, code: str) -> Institution | None:
    """Return the institution with ``code``, or ``None``."""
    return session.execute(select(Institution).where(Institution.code == code)).scalar_one_or_none()


def require_by_id(session: Session, institution_id: int) -> Institution:
    """Return the institution with ``institution_id`` or raise ``NotFound``."""
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound(f"no institution {institution_id}")
    return institution


def require_callers(session: Session, institution_id: int | None, *, what: str) -> Institution:
    """The institution a caller belongs to; a platform admin (none) finds no ``what`` there."""
    institution = session.get(Institution, institution_id) if institution_id is not None else None
    if institution is None:
        raise NotFound(f"{what} belong to an institution; sign in as one of its users")
    return institution


def require_by_code(session: Session, code: str) -> Institution:
    """Return the institution with ``code`` or raise ``NotFound`` naming the known codes."""
    institution = get_by_code(session, code)
    if institution is None:
        known = session.execute(select(Institution.code).order_by(Institution.code)).scalars().all()
        hint = (
            f" Known: {', '.join(known)}."
            if known
            else " None exist yet: run `recoup institutions create`."
        )
        raise NotFound(f"no institution with code {code!r}.{hint}")
    return institution


def list_all(session: Session) -> list[Institution]:
    """Return every institution ordered by code."""
    return list(session.execute(select(Institution).order_by(Institution.code)).scalars())
