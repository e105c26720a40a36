"""Analytics' background jobs: keep the dashboards' daily aggregates up to date."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.analytics.daily import service
from recoup.kit import jobs
from recoup.kit.clock import local_today, utcnow
from recoup.models.institution import Institution

REFRESH = "analytics.refresh"
REFRESH_ALL = "analytics.refresh_all"


@jobs.handler(REFRESH)
def refresh(session: Session, payload: dict[str, Any]) -> None:
    """Refresh one institution's daily aggregates up to a day (default: its today), from a
    day when one is given (``first``: history changed since, e.g. a payment reversed)."""
    institution = session.get(Institution, int(payload["institution_id"]))
    if institution is None:
        return
    as_of = (
        date.fromisoformat(str(payload["as_of"]))
        if payload.get("as_of")
        else local_today(institution.timezone)
    )
    first = date.fromisoformat(str(payload["first"])) if payload.get("first") else None
    service.refresh_aggregates(
        session, institution=institution, as_of=as_of, first=min(first, as_of) if first else None
    )


@jobs.handler(REFRESH_ALL)
def refresh_all(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Hand every institution's refresh to its own job (one failing leaves the others alone)."""
    for institution_id in session.execute(select(Institution.id)).scalars():
        jobs.enqueue(
            session,
            REFRESH,
            {"institution_id": institution_id},
            idempotency_key=f"hourly@{institution_id}@{utcnow():%Y-%m-%dT%H}",
            institution_id=institution_id,
        )


# Every hour: a refresh rewrites only the days since the last one (and a week for late reports).
jobs.periodic(jobs.Schedule(REFRESH_ALL, minute="25"))
