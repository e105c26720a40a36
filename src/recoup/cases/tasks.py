"""Cases' background jobs: keep cases in step with the accounts after imports and payments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import repository, rules, service
from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.models.contact import ContactAttempt
from recoup.models.institution import Institution

# Imports and payments ask for this (``jobs.enqueue_soon``): one sync a minute per
# institution however many changes arrive.
SYNC = "cases.sync"
SYNC_ALL = "cases.sync_all"
# The contact log asks for this after a conversation (``contact.service``).
APPLY_OUTCOME = "cases.apply_outcome"


@jobs.handler(SYNC)
def sync(session: Session, payload: dict[str, Any]) -> None:
    """Open, extend and close one institution's cases from its accounts."""
    service.sync_cases(session, institution_id=int(payload["institution_id"]))


@jobs.handler(SYNC_ALL)
def sync_all(session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001
    """Hand every institution's sync to its own job (one failing leaves the others alone)."""
    for institution_id in session.execute(select(Institution.id)).scalars():
        jobs.enqueue(
            session,
            SYNC,
            {"institution_id": institution_id},
            idempotency_key=f"hourly@{institution_id}@{utcnow():%Y-%m-%dT%H}",
            institution_id=institution_id,
        )


jobs.periodic(jobs.Schedule(SYNC_ALL, minute="5"))


@jobs.handler(APPLY_OUTCOME)
def apply_outcome(session: Session, payload: dict[str, Any]) -> None:
    """Move the debtor's case for what a contact brought (promise, dispute, hardship, stop)."""
    attempt = session.get(ContactAttempt, int(payload["attempt_id"]))
    if attempt is None or attempt.outcome is None:
        return
    event = rules.event_for_outcome(attempt.outcome)
    if event is None:
        return
    case = repository.live_case_of_debtor(
        session, institution_id=attempt.institution_id, debtor_id=attempt.debtor_id
    )
    service.apply_to_case(session, case, event, actor=attempt.actor or "system")
