"""PII key rotation: new active key, `Encrypted` columns re-encrypted in batches, old keys retired.

A rotation is resumable without extra state: while the key ring holds more than the active
key, a rotation is in progress, and re-running it continues with the rows still written
under another key. Blind indexes use the separate index key, so lookups keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Table,
    Text,
    and_,
    func,
    not_,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from recoup.kit.crypto import Encrypted, KeyRing
from recoup.models import Base

_KEY_NUMBER = re.compile(r"^k(\d+)$")


@dataclass(frozen=True, slots=True)
class EncryptedTable:
    """A table and its encrypted columns with the context each is bound to."""

    table: Table
    columns: dict[str, str]  # column name → encryption context


def encrypted_tables() -> list[EncryptedTable]:
    """Return every table with ``Encrypted`` columns, in a stable order."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = {
            column.name: column.type.context
            for column in table.columns
            if isinstance(column.type, Encrypted)
        }
        if columns:
            found.append(EncryptedTable(table, columns))
    return found


def next_key_id(ring: KeyRing) -> str:
    """Return an unused key id ``k<n>`` following every id the ring has held."""
    numbers = [
        int(match.group(1))
        for key_id in (*ring.keys, *ring.retired)
        if (match := _KEY_NUMBER.match(key_id))
    ]
    return f"k{max(numbers, default=0) + 1}"


def start_rotation(ring: KeyRing) -> tuple[KeyRing, bool]:
    """Return the ring to rotate to and whether a new key was made (False: a rotation resumes)."""
    if len(ring.keys) > 1:
        return ring, False
    return ring.with_new_active_key(next_key_id(ring)), True


def _raw(table: Table, name: str) -> ColumnElement[str]:
    return type_coerce(table.c[name], Text())


def _written_elsewhere(table: Table, name: str, active: str) -> ColumnElement[bool]:
    raw = _raw(table, name)
    return and_(raw.is_not(None), not_(raw.startswith(f"{active}:", autoescape=True)))


def reencrypt_batch(session: Session, *, ring: KeyRing, batch: int) -> int:
    """Re-encrypt up to ``batch`` rows still written under a non-active key; return how many."""
    for item in encrypted_tables():
        table = item.table
        names = list(item.columns)
        key = table.primary_key.columns.values()[0]
        statement = (
            select(key, *[_raw(table, name).label(name) for name in names])
            .where(or_(*[_written_elsewhere(table, name, ring.active) for name in names]))
            .order_by(key)
            .limit(batch)
        )
        rows = session.execute(statement).all()
        for row in rows:
            values = {}
            for name in names:
                stored = getattr(row, name)
                if stored is None or ring.key_id_of(stored) == ring.active:
                    continue
                context = item.columns[name]
                plaintext = ring.decrypt(stored, context=context)
                values[table.c[name]] = type_coerce(
                    ring.encrypt(plaintext, context=context), Text()
                )
            session.execute(update(table).where(key == row[0]).values(values))
        if rows:
            session.flush()
            return len(rows)
    return 0


def key_usage(session: Session, *, key_ids: list[str]) -> dict[str, int]:
    """Count stored ciphertexts written with each of ``key_ids``."""
    counts = dict.fromkeys(key_ids, 0)
    for item in encrypted_tables():
        for name in item.columns:
            raw = _raw(item.table, name)
            for key_id in key_ids:
                counts[key_id] += int(
                    session.scalar(
                        select(func.count()).where(raw.startswith(f"{key_id}:", autoescape=True))
                    )
                    or 0
                )
    return counts


def retire_unused(session: Session, *, ring: KeyRing) -> tuple[KeyRing, list[str]]:
    """Return the ring without the non-active keys no ciphertext uses any more, and their ids."""
    in_use = key_usage(session, key_ids=[k for k in ring.keys if k != ring.active])
    retired = [
        key_id for key_id in sorted(ring.keys) if key_id != ring.active and not in_use.get(key_id)
    ]
    for key_id in retired:
        ring = ring.without_key(key_id)
    return ring, retired
