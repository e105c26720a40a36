"""Queries of message templates and violations, scoped by institution."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models.compliance import (
    ComplianceViolation,
    MessageTemplate,
    ViolationStatus,
)


def get_template(
    session: Session, *, institution_id: int, template_id: int
) -> MessageTemplate | None:
    """Return one template of the institution."""
    return session.execute(
        select(MessageTemplate).where(
            MessageTemplate.institution_id == institution_id, MessageTemplate.id == template_id
        )
    ).scalar_one_or_none()


def templates(
    session: Session, *, institution_id: int, status: str | None = None
) -> Sequence[MessageTemplate]:
    """Return the institution's templates, optionally in one status."""
    statement = select(MessageTemplate).where(MessageTemplate.institution_id == institution_id)
    if status is not None:
        statement = statement.where(MessageTemplate.status == status)
    return session.execute(statement.order_by(MessageTemplate.id)).scalars().all()


def violations(
    session: Session, *, institution_id: int, status: ViolationStatus | None = None
) -> Sequence[ComplianceViolation]:
    """Return the institution's violations, newest first."""
    statement = select(ComplianceViolation).where(
        ComplianceViolation.institution_id == institution_id
    )
    if status is not None:
        statement = statement.where(ComplianceViolation.status == status)
    return session.execute(statement.order_by(ComplianceViolation.id.desc())).scalars().all()


def get_violation(
    session: Session, *, institution_id: int, violation_id: int
) -> ComplianceViolation | None:
    """Return one violation of the institution."""
    return session.execute(
        select(ComplianceViolation).where(
            ComplianceViolation.institution_id == institution_id,
            ComplianceViolation.id == violation_id,
        )
    ).scalar_one_or_none()
