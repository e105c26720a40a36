"""How an audit event's hash is computed and how a chain is judged (pure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainLink:
    """The fields of one stored event that the hash covers."""

    row_id: int
    sequence: int
    institution_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    occurred_at: datetime
    details: dict[str, Any]
    previous_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where and why a chain stops verifying."""

    row_id: int | None
    sequence: int | None
    reason: str


def event_hash(
    *,
    sequence: int,
    institution_id: int | None,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    occurred_at: datetime,
    details: dict[str, Any],
    previous_hash: str,
) -> str:
    """Return the SHA-256 over the canonical JSON of an event and its predecessor's hash."""
    canonical = json.dumps(
        {
            "sequence": sequence,
            "institution_id": institution_id,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "occurred_at": occurred_at.isoformat(timespec="microseconds"),
            "details": details,
            "previous_hash": previous_hash,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_break(
    links: Iterable[ChainLink], *, head_sequence: int, head_hash: str
) -> ChainBreak | None:
    """Return the first place the chain is broken, or ``None`` when it is intact."""
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    for link in links:
        if link.sequence != expected_sequence:
            return ChainBreak(
                link.row_id,
                link.sequence,
                f"sequence {link.sequence} where {expected_sequence} was expected: "
                "an event before it was deleted or the rows were reordered",
            )
        if link.previous_hash != expected_previous:
            return ChainBreak(
                link.row_id,
                link.sequence,
                "previous-hash does not match the event before it: an earlier event was "
                "altered, deleted or reordered",
            )
        recomputed = event_hash(
            sequence=link.sequence,
            institution_id=link.institution_id,
            actor=link.actor,
            action=link.action,
            object_type=link.object_type,
            object_id=link.object_id,
            occurred_at=link.occurred_at,
            details=link.details,
            previous_hash=link.previous_hash,
        )
        if recomputed != link.hash:
            return ChainBreak(
                link.row_id,
                link.sequence,
                "contents do not match the stored hash: this event was altered",
            )
        expected_previous = link.hash
        expected_sequence += 1
    last_sequence = expected_sequence - 1
    if last_sequence != head_sequence or expected_previous != head_hash:
        return ChainBreak(
            None,
            last_sequence + 1 if last_sequence < head_sequence else last_sequence,
            f"the chain ends at event {last_sequence} but the head records event {head_sequence}: "
            "events at the end were deleted or the head was altered",
        )
    return None
