"""Append to and verify the audit trail. Every domain records its events through ``record``.

Events are signed with the key ring's active audit key. A chain started before the chain
was keyed is sealed by the first event appended afterwards: an ``audit.chain_keyed`` event,
signed, naming how many unkeyed events precede it and their last hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from recoup.audit import repository
from recoup.audit.rules import (
    ChainBreak,
    Checkpoint,
    checkpoint_problem,
    event_hash,
    find_break,
    is_keyed,
    sign_checkpoint,
)
from recoup.kit.clock import supported_moment, utcnow
from recoup.kit.crypto import get_keyring
from recoup.kit.errors import ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.models.audit import AuditEvent

if TYPE_CHECKING:
    from recoup.identity.principal import Principal


SYSTEM_ACTOR = "system"
SEAL_ACTION = "audit.chain_keyed"


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
    events = _append(session, entries)
    return events[len(events) - len(entries) :]


def _append(session: Session, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Sign and append ``entries`` after the locked head, sealing an unkeyed chain first."""
    key_id, key = get_keyring().active_audit_key()
    head = repository.lock_head(session)
    sequence, previous = head.sequence, head.hash
    if sequence > 0 and not is_keyed(previous):
        entries = [_seal_entry(sequence, previous, key_id), *entries]
    if not entries:
        return []
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
            key_id=key_id,
            key=key,
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


def _seal_entry(unkeyed_events: int, unkeyed_head: str, key_id: str) -> AuditEntry:
    return AuditEntry(
        actor=SYSTEM_ACTOR,
        action=SEAL_ACTION,
        object_type="audit_chain",
        object_id=key_id,
        details={"unkeyed_events": unkeyed_events, "unkeyed_head": unkeyed_head},
    )


def seal_unkeyed_chain(session: Session) -> AuditEvent | None:
    """Sign the end of a chain begun before it was keyed; return the seal (``None``: no need)."""
    sequence, head_hash = repository.read_head(session)
    if sequence == 0 or is_keyed(head_hash):
        return None
    events = _append(session, [])
    return events[0] if events else None


def verify(
    session: Session, *, checkpoint: Checkpoint | None = None
) -> tuple[int, ChainBreak | None]:
    """Walk the whole chain; return how many events were checked and the first break.

    With a ``checkpoint`` (kept outside the database) the chain must also still hold the
    event it names, with the same hash: nothing up to it changed and nothing was cut off.
    """
    keys = get_keyring().audit_keys
    if checkpoint is not None:
        problem = checkpoint_problem(checkpoint, keys)
        if problem is not None:
            return 0, ChainBreak(None, checkpoint.sequence, problem)
    head_sequence, head_hash = repository.read_head(session)
    checked = 0

    def counted() -> Any:
        nonlocal checked
        for link in repository.iter_links(session):
            checked += 1
            yield link

    broken = find_break(
        counted(),
        head_sequence=head_sequence,
        head_hash=head_hash,
        keys=keys,
        require_keyed=True,
        checkpoint=checkpoint,
    )
    return checked, broken


def checkpoint(session: Session) -> Checkpoint:
    """Return a signed checkpoint of the chain head (only reads; seal an unkeyed chain first).

    Refuses (``ValidationFailed``) when the chain does not verify: a checkpoint must never
    vouch for a chain that was already tampered with, nor for an unkeyed one.
    """
    _checked, broken = verify(session)
    if broken is not None:
        raise ValidationFailed(
            f"the audit chain is broken at event {broken.sequence}: {broken.reason}; "
            "no checkpoint was made"
        )
    sequence, head_hash = repository.read_head(session)
    key_id, key = get_keyring().active_audit_key()
    return sign_checkpoint(
        sequence=sequence, hash=head_hash, created_at=utcnow(), key_id=key_id, key=key
    )


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
        if moment is not None:
            try:
                supported_moment(moment)
            except ValueError as error:
                raise ValidationFailed(str(error)) from None
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
