"""Identity's background jobs: pruning old sign-in attempts on a schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from recoup.identity import repository
from recoup.kit import jobs
from recoup.kit.clock import utcnow

# Lockout looks back minutes; a month of attempts is kept for investigations.
LOGIN_ATTEMPTS_KEPT = timedelta(days=30)


@jobs.handler("identity.prune_login_attempts")
def prune_login_attempts(session: Session, payload: dict[str, Any]) -> None:
    """Delete sign-in attempts older than the retention period (or ``payload['days']``)."""
    days = payload.get("days")
    kept = timedelta(days=int(days)) if days is not None else LOGIN_ATTEMPTS_KEPT
    repository.prune_login_attempts(session, before=utcnow() - kept)


jobs.periodic(jobs.Schedule("identity.prune_login_attempts", minute="17", hour="3"))
