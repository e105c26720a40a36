"""What allocation reads: allocatable cases with their queue and region, agents' certificates."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases.rules import WORKED_STATES
from recoup.models.cases import Case, Queue
from recoup.models.compliance import Certification
from recoup.models.debtor import Debtor

CaseRow = tuple[int, int, int | None, int | None, str | None, list[str] | None, str | None]


def allocatable_cases(session: Session, *, institution_id: int) -> list[CaseRow]:
    """Each worked case: id, expected recovery, owner, queue, queue work, queue skills, province."""
    rows = session.execute(
        select(
            Case.id,
            Case.expected_recovery,
            Case.owner_id,
            Case.queue_id,
            Queue.work,
            Queue.skills,
            Debtor.province,
        )
        .join(Debtor, Debtor.id == Case.debtor_id)
        .outerjoin(Queue, Queue.id == Case.queue_id)
        .where(Case.institution_id == institution_id, Case.state.in_(sorted(WORKED_STATES)))
        .order_by(Case.id)
    )
    return [
        (case_id, int(value), owner, queue, work, skills, province)
        for case_id, value, owner, queue, work, skills, province in rows
    ]


def certified_user_ids(session: Session, *, institution_id: int, on: date) -> set[int]:
    """Users holding a compliance certificate valid on a day (POL-CERT)."""
    return set(
        session.execute(
            select(Certification.user_id).where(
                Certification.institution_id == institution_id,
                Certification.issued_on <= on,
                Certification.expires_on >= on,
            )
        ).scalars()
    )
