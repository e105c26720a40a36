"""Queries of the gate: slot claims and the decisions log, scoped by institution.

The contacts a decision allows are rows of the contact log, read through
``recoup.contact.repository``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from recoup import bulk
from recoup.kit.pagination import Page, PageRequest
from recoup.models.compliance import ContactDecision, SlotClaim
from recoup.models.debtor import Debtor

# The decisions' Core table: a batch goes in as one statement, no ORM bookkeeping per row.
_DECISIONS: Table = ContactDecision.__table__  # type: ignore[assignment]


def lock_debtor(session: Session, *, institution_id: int, debtor_id: int) -> None:
    """Serialise gate checks of one debtor (a row lock on PostgreSQL; SQLite has one writer)."""
    session.execute(
        select(Debtor.id)
        .where(Debtor.institution_id == institution_id, Debtor.id == debtor_id)
        .with_for_update()
    ).all()


def claimed_slot_keys(
    session: Session, *, institution_id: int, debtor_id: int, prefix: str
) -> set[str]:
    """Return the slot keys of a cap family already claimed for the debtor."""
    return set(
        session.execute(
            select(SlotClaim.slot_key).where(
                SlotClaim.institution_id == institution_id,
                SlotClaim.debtor_id == debtor_id,
                SlotClaim.slot_key.startswith(prefix, autoescape=True),
            )
        ).scalars()
    )


def get_decision(
    session: Session, *, institution_id: int, decision_id: int
) -> ContactDecision | None:
    """Return one decision of the institution."""
    return session.execute(
        select(ContactDecision).where(
            ContactDecision.institution_id == institution_id, ContactDecision.id == decision_id
        )
    ).scalar_one_or_none()


def delete_claims(session: Session, *, attempt_id: int) -> None:
    """Free every slot of a contact that was never made."""
    session.execute(delete(SlotClaim).where(SlotClaim.attempt_id == attempt_id))


def delete_effective_claims(session: Session, *, attempt_id: int) -> None:
    """Free the effective-call slots of a contact that turned out not to connect."""
    session.execute(
        delete(SlotClaim).where(
            SlotClaim.attempt_id == attempt_id,
            SlotClaim.slot_key.contains("/effective/", autoescape=True),
        )
    )


def decisions_page(
    session: Session,
    *,
    institution_id: int,
    page: PageRequest,
    allowed: bool | None = None,
    rule_id: str | None = None,
    debtor_id: int | None = None,
) -> Page[ContactDecision]:
    """Return one page of decisions, newest first, filtered."""
    conditions = [ContactDecision.institution_id == institution_id]
    if allowed is not None:
        conditions.append(ContactDecision.allowed == allowed)
    if debtor_id is not None:
        conditions.append(ContactDecision.debtor_id == debtor_id)
    if rule_id is not None:
        conditions.append(cast(ContactDecision.rule_ids, String).contains(f'"{rule_id}"'))
    total = session.execute(select(func.count(ContactDecision.id)).where(*conditions)).scalar_one()
    rows = session.execute(
        select(ContactDecision)
        .where(*conditions)
        .order_by(ContactDecision.id.desc())
        .offset(page.offset)
        .limit(page.size)
    ).scalars()
    return Page(items=list(rows), total=total, page=page.page, size=page.size)


def decisions_log_page(
    session: Session,
    *,
    institution_id: int,
    page: PageRequest,
    allowed: bool | None = None,
    rule_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    debtor_external_id: str | None = None,
) -> Page[tuple[ContactDecision, str]]:
    """Return one page of decisions with their debtor's external id, newest first, filtered."""
    conditions = [ContactDecision.institution_id == institution_id]
    if allowed is not None:
        conditions.append(ContactDecision.allowed == allowed)
    if rule_id is not None:
        conditions.append(
            cast(ContactDecision.rule_ids, String).contains(f'"{rule_id}"', autoescape=True)
        )
    if channel is not None:
        conditions.append(ContactDecision.channel == channel)
    if since is not None:
        conditions.append(ContactDecision.created_at >= since)
    if until is not None:
        conditions.append(ContactDecision.created_at < until)
    if debtor_external_id is not None:
        conditions.append(Debtor.external_id == debtor_external_id)
    joined = (
        select(ContactDecision, Debtor.external_id)
        .join(Debtor, Debtor.id == ContactDecision.debtor_id)
        .where(Debtor.institution_id == institution_id, *conditions)
    )
    total = session.execute(
        select(func.count()).select_from(joined.with_only_columns(ContactDecision.id).subquery())
    ).scalar_one()
    rows = session.execute(
        joined.order_by(ContactDecision.id.desc()).offset(page.offset).limit(page.size)
    ).all()
    return Page(
        items=[(decision, external_id) for decision, external_id in rows],
        total=total,
        page=page.page,
        size=page.size,
    )


def debtor_external_ids(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int]
) -> dict[int, str]:
    """Return the external ids of the institution's debtors among ``debtor_ids``."""
    if not debtor_ids:
        return {}
    rows = session.execute(
        select(Debtor.id, Debtor.external_id).where(
            Debtor.institution_id == institution_id, Debtor.id.in_(debtor_ids)
        )
    ).all()
    return {int(row[0]): str(row[1]) for row in rows}


def add_decisions(
    session: Session, columns: Mapping[str, Sequence[Any] | bulk.Coded], *, size: int
) -> list[int]:
    """Insert ``size`` decisions, given as columns (name → one value per decision, or
    ``bulk.Coded``), in one statement per batch; return their ids in the rows' order.

    On SQLite and PostgreSQL the ids are taken up front (SQLite: after the highest;
    PostgreSQL: from the id sequence) and inserted with the rows in one driver executemany (an
    insert returning its ids in order goes one row at a time on SQLite and binds every value
    row by row through SQLAlchemy); elsewhere the insert returns them.
    """
    if not size:
        return []
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        take = bulk.next_ids if dialect == "sqlite" else bulk.sequence_ids
        ids = take(session, _DECISIONS, size)
        bulk.insert_columns(session, _DECISIONS, {"id": ids, **columns}, size=size)
        return ids
    names = list(columns)
    plain = [
        [column.values[code] for code in column.codes] if isinstance(column, bulk.Coded) else column
        for column in columns.values()
    ]
    result = session.execute(
        insert(_DECISIONS).returning(_DECISIONS.c.id, sort_by_parameter_order=True),
        [dict(zip(names, values, strict=True)) for values in zip(*plain, strict=True)],
    )
    return [int(decision_id) for decision_id in result.scalars()]
