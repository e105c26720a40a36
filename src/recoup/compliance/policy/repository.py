"""Queries of institution policy versions, scoped by institution."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models.compliance import (
    CompliancePolicy,
)


def latest_approved_policy(session: Session, *, institution_id: int) -> CompliancePolicy | None:
    """Return the newest approved policy version of the institution."""
    return session.execute(
        select(CompliancePolicy)
        .where(
            CompliancePolicy.institution_id == institution_id,
            CompliancePolicy.approved_at.is_not(None),
        )
        .order_by(CompliancePolicy.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def policy_version(
    session: Session, *, institution_id: int, version: int
) -> CompliancePolicy | None:
    """Return one policy version."""
    return session.execute(
        select(CompliancePolicy).where(
            CompliancePolicy.institution_id == institution_id, CompliancePolicy.version == version
        )
    ).scalar_one_or_none()


def newest_policy_version(session: Session, *, institution_id: int) -> int:
    """Return the highest policy version number used so far (0 for none)."""
    versions = session.execute(
        select(CompliancePolicy.version).where(CompliancePolicy.institution_id == institution_id)
    ).scalars()
    return max(versions, default=0)


def pending_policies(session: Session, *, institution_id: int) -> Sequence[CompliancePolicy]:
    """Return the proposed policy versions not yet approved, newest first."""
    return (
        session.execute(
            select(CompliancePolicy)
            .where(
                CompliancePolicy.institution_id == institution_id,
                CompliancePolicy.approved_at.is_(None),
            )
            .order_by(CompliancePolicy.version.desc())
        )
        .scalars()
        .all()
    )
