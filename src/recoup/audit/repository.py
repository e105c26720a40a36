"""Queries for the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from recoup.audit.rules import GENESIS_HASH, ChainLink
from recoup.kit.clock import aware
from recoup.kit.pagination import Page, PageRequest
from recoup.models.audit import AuditChainHead, AuditEvent


def lock_head(session: Session) -> AuditChainHead:
    """Return the chain head row, locked for update (created on first use)."""
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditChainHead(id=1, sequence=0, hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


def read_head(session: Session) -> tuple[int, str]:
    """Return the recorded last sequence and hash."""
    head = session.get(AuditChainHead, 1)
    return (head.sequence, head.hash) if head else (0, GENESIS_HASH)


def iter_links(session: Session, *, batch: int = 5000) -> Iterator[ChainLink]:
    """Yield every event in storage order (by row id), in batches."""
    last_id = 0
    while True:
        rows = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.id > last_id)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield ChainLink(
                row_id=row.id,
                sequence=row.sequence,
                institution_id=row.institution_id,
                actor=row.actor,
                action=row.action,
                object_type=row.object_type,
                object_id=row.object_id,
                occurred_at=aware(row.occurred_at),
                details=row.details,
                previous_hash=row.previous_hash,
                hash=row.hash,
            )
        last_id = rows[-1].id
        session.expunge_all()


def events_page(
    session: Session,
    *,
    institution_id: int | None,
    all_institutions: bool,
    page: PageRequest,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEvent]:
    """Return one page of events, newest first, of one institution (or of all of them)."""
    statement: Select[AuditEvent] = select(AuditEvent)
    if not all_institutions:
        statement = statement.where(AuditEvent.institution_id == institution_id)
    if action:
        statement = statement.where(AuditEvent.action == action)
    if actor:
        statement = statement.where(AuditEvent.actor == actor)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.occurred_at < until)
    total = session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = session.scalars(
        statement.order_by(AuditEvent.sequence.desc()).offset(page.offset).limit(page.size)
    )
    return Page(items=list(rows), total=int(total or 0), page=page.page, size=page.size)
