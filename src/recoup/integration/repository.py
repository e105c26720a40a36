"""Integration queries: idempotency keys past their time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from recoup.models.integration import IdempotencyRecord


def prune_idempotency_keys(
    session: Session, *, institution_id: int | None, before: datetime
) -> int:
    """Delete one institution's (or the platform's) keys used before ``before``; return how many."""
    owner = (
        IdempotencyRecord.institution_id.is_(None)
        if institution_id is None
        else IdempotencyRecord.institution_id == institution_id
    )
    result = session.execute(
        delete(IdempotencyRecord).where(owner, IdempotencyRecord.created_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
