"""Append to and verify the audit trail. Every domain records its events through ``record``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.audit import repository
from recoup.audit.rules import ChainBreak, event_hash, find_break
from recoup.kit.clock import utcnow
from recoup.models.audit import AuditEvent


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
    head = repository.lock_head(session)
    sequence = head.sequence + 1
    occurred_at = utcnow()
    body = dict(details or {})
    digest = event_hash(
        sequence=sequence,
        institution_id=institution_id,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        occurred_at=occurred_at,
        details=body,
        previous_hash=head.hash,
    )
    event = AuditEvent(
        sequence=sequence,
        institution_id=institution_id,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        occurred_at=occurred_at,
        details=body,
        previous_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    head.sequence = sequence
    head.hash = digest
    session.flush()
    return event


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
