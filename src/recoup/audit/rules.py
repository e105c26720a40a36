"""How audit events are hashed, checkpoints signed and a chain judged (pure).

An event's hash is an HMAC-SHA256 under an audit key from the key ring, stored as
``<key id>:<base64url>`` so each event names the key it was signed with and keys can
rotate. Events written before the chain was keyed carry a plain SHA-256 hex digest; they
stay verifiable, and the first keyed event after them binds them (its HMAC covers their
last hash), so they cannot be rewritten later either. A keyed chain never goes back to
plain hashes: an unkeyed event after a keyed one, or an unkeyed head, is a break.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64
CHECKPOINT_FORMAT = "recoup-audit-checkpoint/1"
_EVENT_DOMAIN = b"recoup-audit-event\x00"
_CHECKPOINT_DOMAIN = b"recoup-audit-checkpoint\x00"
_KEYED_SEPARATOR = ":"
_HASHED_FIELDS = (
    "sequence",
    "institution_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "occurred_at",
    "details",
    "previous_hash",
)


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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the chain's event ``sequence`` had ``hash`` at ``created_at``."""

    sequence: int
    hash: str
    created_at: datetime
    key_id: str
    signature: str


class CheckpointUnreadable(ValueError):
    """A checkpoint file is not a Recoup audit checkpoint."""


def is_keyed(digest: str) -> bool:
    """Tell whether a stored hash is an HMAC under an audit key (not a plain SHA-256)."""
    return _KEYED_SEPARATOR in digest


def key_id_of(digest: str) -> str:
    """Return the audit key id a keyed hash names."""
    return digest.partition(_KEYED_SEPARATOR)[0]


def _canonical(fields: dict[str, Any]) -> bytes:
    occurred_at: datetime = fields["occurred_at"]
    return json.dumps(
        {**fields, "occurred_at": occurred_at.isoformat(timespec="microseconds")},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode()


def _keyed(key_id: str, key: bytes, domain: bytes, message: bytes) -> str:
    digest = hmac.digest(key, domain + key_id.encode() + b"\x00" + message, "sha256")
    return f"{key_id}{_KEYED_SEPARATOR}{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


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
    key_id: str | None = None,
    key: bytes | None = None,
) -> str:
    """Return an event's hash: HMAC under audit key ``key_id`` (no key: the legacy SHA-256)."""
    canonical = _canonical(
        {
            "sequence": sequence,
            "institution_id": institution_id,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "occurred_at": occurred_at,
            "details": details,
            "previous_hash": previous_hash,
        }
    )
    return _digest(canonical, key_id, key)


def _digest(canonical: bytes, key_id: str | None, key: bytes | None) -> str:
    if key_id is None or key is None:
        return hashlib.sha256(canonical).hexdigest()
    return _keyed(key_id, key, _EVENT_DOMAIN, canonical)


def _checkpoint_message(sequence: int, digest: str, created_at: datetime) -> bytes:
    return f"{sequence}\x00{digest}\x00{created_at.isoformat(timespec='microseconds')}".encode()


def sign_checkpoint(
    *, sequence: int, hash: str, created_at: datetime, key_id: str, key: bytes
) -> Checkpoint:
    """Return a checkpoint of event ``sequence`` signed with audit key ``key_id``."""
    message = _checkpoint_message(sequence, hash, created_at)
    signature = _keyed(key_id, key, _CHECKPOINT_DOMAIN, message)
    return Checkpoint(sequence, hash, created_at, key_id, signature)


def checkpoint_problem(checkpoint: Checkpoint, keys: Mapping[str, bytes]) -> str | None:
    """Return why a checkpoint cannot be trusted, or ``None`` when its signature holds."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return (
            f"the checkpoint is signed with audit key {checkpoint.key_id!r}, "
            "which is not in the key ring"
        )
    expected = sign_checkpoint(
        sequence=checkpoint.sequence,
        hash=checkpoint.hash,
        created_at=checkpoint.created_at,
        key_id=checkpoint.key_id,
        key=key,
    ).signature
    if not hmac.compare_digest(expected, checkpoint.signature):
        return (
            "the checkpoint's signature does not match: the file was altered "
            "or was not made with this key ring"
        )
    return None


def checkpoint_to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    """Return the checkpoint as the JSON document stored outside the database."""
    return {
        "format": CHECKPOINT_FORMAT,
        "sequence": checkpoint.sequence,
        "hash": checkpoint.hash,
        "created_at": checkpoint.created_at.isoformat(timespec="microseconds"),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def checkpoint_from_json(document: Any) -> Checkpoint:
    """Read a checkpoint document; raise ``CheckpointUnreadable`` when it is not one."""
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointUnreadable(f"not a Recoup audit checkpoint (format {CHECKPOINT_FORMAT})")
    try:
        created_at = datetime.fromisoformat(document["created_at"])
        checkpoint = Checkpoint(
            sequence=document["sequence"],
            hash=document["hash"],
            created_at=created_at,
            key_id=document["key_id"],
            signature=document["signature"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointUnreadable(f"the checkpoint is incomplete or malformed: {error}") from None
    text_fields = (checkpoint.hash, checkpoint.key_id, checkpoint.signature)
    if (
        not isinstance(checkpoint.sequence, int)
        or isinstance(checkpoint.sequence, bool)
        or checkpoint.sequence < 0
        or not all(isinstance(value, str) for value in text_fields)
        or created_at.tzinfo is None
    ):
        raise CheckpointUnreadable("the checkpoint's fields have the wrong types")
    return checkpoint


def _content_break(
    link: ChainLink, keys: Mapping[str, bytes] | None, *, after_keyed: bool
) -> str | None:
    key_id = key = None
    if is_keyed(link.hash):
        key_id = key_id_of(link.hash)
        key = (keys or {}).get(key_id)
        if key is None:
            return f"signed with audit key {key_id!r}, which is not in the key ring"
    elif after_keyed:
        return (
            "carries an unkeyed hash after the chain was keyed: events were rewritten "
            "by someone without the audit key"
        )
    fields = {name: getattr(link, name) for name in _HASHED_FIELDS}
    if not hmac.compare_digest(_digest(_canonical(fields), key_id, key), link.hash):
        return "contents do not match the stored hash: this event was altered"
    return None


def find_break(
    links: Iterable[ChainLink],
    *,
    head_sequence: int,
    head_hash: str,
    keys: Mapping[str, bytes] | None = None,
    require_keyed: bool = False,
    checkpoint: Checkpoint | None = None,
) -> ChainBreak | None:
    """Return the first place the chain is broken, or ``None`` when it is intact.

    ``keys`` are the audit keys by id; ``require_keyed`` refuses a chain whose last event is
    unkeyed; ``checkpoint`` (signature already checked) must match the event it names.
    """
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    seen_keyed = False
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
        problem = _content_break(link, keys, after_keyed=seen_keyed)
        if problem is not None:
            return ChainBreak(link.row_id, link.sequence, problem)
        if (
            checkpoint is not None
            and link.sequence == checkpoint.sequence
            and not hmac.compare_digest(link.hash, checkpoint.hash)
        ):
            return ChainBreak(
                link.row_id,
                link.sequence,
                f"differs from the checkpoint of {checkpoint.created_at.isoformat()}: "
                "events up to it were rewritten or the database was restored from an "
                "older copy",
            )
        seen_keyed = seen_keyed or is_keyed(link.hash)
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
    if checkpoint is not None and last_sequence < checkpoint.sequence:
        return ChainBreak(
            None,
            last_sequence + 1,
            f"the chain ends at event {last_sequence} but the checkpoint of "
            f"{checkpoint.created_at.isoformat()} records event {checkpoint.sequence}: "
            "events were deleted or the database was rolled back",
        )
    if checkpoint is not None and checkpoint.sequence == 0 and checkpoint.hash != GENESIS_HASH:
        return ChainBreak(None, 0, "the checkpoint names event 0 with a hash other than genesis")
    if require_keyed and last_sequence > 0 and not is_keyed(expected_previous):
        return ChainBreak(
            None,
            last_sequence,
            "the chain is not keyed: its events carry only plain SHA-256 hashes, which anyone "
            "who can write the database can recompute; seal it with `recoup audit checkpoint` "
            "(or, if it was keyed before, keyed events were removed and the rest rewritten)",
        )
    return None
