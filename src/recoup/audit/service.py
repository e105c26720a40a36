"""Append to and verify the audit trail. Every domain records its events through ``record``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from recoup.audit import repository
from recoup.audit.rules import ChainBreak, event_hash, find_break
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.audit import AuditEvent

if TYPE_CHECKING:
    from recoup.identity.principal import Principal


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event to append; ``details`` must never hold plaintext PII."""

    actor: str
    action: str
    object_type: str
    object_id: str | int
    institution_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    institution_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain (inside the caller's transaction)."""
    entry = AuditEntry(actor, action, object_type, object_id, institution_id, dict(details or {}))
    (event,) = record_many(session, [entry])
    return event


def record_many(session: Session, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Append events in order, locking the chain head once (for batch work)."""
    if not entries:
        return []
    head = repository.lock_head(session)
    sequence, previous = head.sequence, head.hash
    occurred_at = utcnow()
    events = []
    for entry in entries:
        sequence += 1
        body = dict(entry.details)
        digest = event_hash(
            sequence=sequence,
            institution_id=entry.institution_id,
            actor=entry.actor,
            action=entry.action,
            object_type=entry.object_type,
            object_id=str(entry.object_id),
            occurred_at=occurred_at,
            details=body,
            previous_hash=previous,
        )
        events.append(
            AuditEvent(
                sequence=sequence,
                institution_id=entry.institution_id,
                actor=entry.actor,
                action=entry.action,
                object_type=entry.object_type,
                object_id=str(entry.object_id),
                occurred_at=occurred_at,
                details=body,
                previous_hash=previous,
                hash=digest,
            )
        )
        previous = digest
    session.add_all(events)
    head.sequence = sequence
    head.hash = previous
    session.flush()
    return events


def verify(session: Session) -> tuple[int, ChainBreak | None]:
    """Walk the whole chain; return how many events were checked and the first break."""
    head_sequence, head_hash = repository.read_head(session)
    checked = 0

    def counted() -> Any:
        nonlocal checked
        for link in repository.iter_links(session):
            checked += 1
            yield link

    broken = find_break(counted(), head_sequence=head_sequence, head_hash=head_hash)
    return checked, broken


def browse(
    session: Session,
    *,
    principal: Principal,
    page: PageRequest,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditEvent]:
    """Return one page of the trail of the principal's institution (a platform admin: all)."""
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise ValidationFailed(
                "give dates with a time zone offset, e.g. 2026-01-31T00:00:00+08:00"
            )
    if since is not None and until is not None and until <= since:
        raise ValidationFailed("the end of the date range must be after its start")
    return repository.events_page(
        session,
        institution_id=principal.institution_id,
        all_institutions=principal.is_platform_admin,
        page=page,
        action=action,
        actor=actor,
        since=since,
        until=until,
    )
