"""Strategy jobs: re-route a case at once when something happens to it.

Cases, the contact log and payments ask for these by name (``jobs.enqueue``), so none of them
imports the strategy domain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from recoup.kit import jobs
from recoup.models.institution import Institution
from recoup.strategy import repository, service
from recoup.strategy.document import StrategyEvent

# A case event (``cases.service``) or a contact outcome (``contact.service``) happened.
ON_EVENT = "strategy.on_event"
# Payments arrived (``portfolio.service.follow_up_payments``): re-route the cases they paid.
REEVALUATE_PAID = "strategy.reevaluate_paid"


@jobs.handler(ON_EVENT)
def on_event(session: Session, payload: dict[str, Any]) -> None:
    """Record a case's new step under the active strategy's event rules."""
    institution = session.get(Institution, int(payload["institution_id"]))
    if institution is None:
        return
    case_id = payload.get("case_id")
    if case_id is None and payload.get("debtor_id") is not None:
        case_id = repository.live_case_of_debtor(
            session, institution_id=institution.id, debtor_id=int(payload["debtor_id"])
        )
    if case_id is None:
        return
    if "case_event" in payload:
        service.apply_case_event(
            session,
            institution=institution,
            case_id=int(case_id),
            case_event=str(payload["case_event"]),
        )
        return
    try:
        event = StrategyEvent(str(payload.get("event")))
    except ValueError:
        return
    service.apply_event(session, institution=institution, case_id=int(case_id), event=event)


@jobs.handler(REEVALUATE_PAID)
def reevaluate_paid(session: Session, payload: dict[str, Any]) -> None:
    """Re-route the institution's cases that were paid since their step was last written."""
    institution = session.get(Institution, int(payload["institution_id"]))
    if institution is not None:
        service.reevaluate_paid(session, institution=institution)
