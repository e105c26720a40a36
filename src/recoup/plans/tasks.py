"""Payment plans' background jobs: follow running plans against payments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.models.institution import Institution
from recoup.plans import service

RECONCILE = "plans.reconcile"
RECONCILE_ALL = "plans.reconcile_all"


@jobs.handler(RECONCILE)
def reconcile(session: Session, payload: dict[str, Any]) -> None:
    """Follow one institution's running plans against its payments, as of its today."""
    institution = session.get(Institution, int(payload["institution_id"]))
    if institution is not None:
        service.reconcile_plans(session, institution=institution, actor="system")


@jobs.handler(RECONCILE_ALL)
def reconcile_all(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Every institution's plans, each in its own job (late instalments turn broken daily)."""
    for institution_id in session.execute(select(Institution.id)).scalars():
        jobs.enqueue(
            session,
            RECONCILE,
            {"institution_id": institution_id},
            idempotency_key=f"hourly@{institution_id}@{utcnow():%Y-%m-%dT%H}",
            institution_id=institution_id,
        )


# Hourly, so each institution's plans turn late or broken soon after its local midnight.
jobs.periodic(jobs.Schedule(RECONCILE_ALL, minute="35"))
