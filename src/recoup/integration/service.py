"""Integration services: keeping idempotency keys for their institution's time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from recoup.institutions import repository as institutions
from recoup.institutions.settings import IntegrationSettings, settings_of
from recoup.integration import repository
from recoup.kit.clock import utcnow


def prune_idempotency_keys(session: Session, *, now: datetime | None = None) -> int:
    """Forget the idempotency keys each institution keeps no longer; return how many."""
    now = now or utcnow()
    pruned = 0
    for institution in institutions.list_all(session):
        days = settings_of(institution).integration.idempotency_key_days
        pruned += repository.prune_idempotency_keys(
            session, institution_id=institution.id, before=now - timedelta(days=days)
        )
    platform_days = IntegrationSettings().idempotency_key_days
    pruned += repository.prune_idempotency_keys(
        session, institution_id=None, before=now - timedelta(days=platform_days)
    )
    return pruned
