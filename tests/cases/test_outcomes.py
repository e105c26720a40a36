"""What contacts and promises do to cases: outcomes move them, a wrong number is invalidated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service as cases
from recoup.cases.rules import CaseEvent
from recoup.cases.tasks import apply_outcome
from recoup.compliance.gate import service as gate
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.kit.clock import local_today
from recoup.models.cases import Case
from recoup.models.jobs import Job
from recoup.workbench import service as promises
from recoup.workbench.rules import PromiseTerms
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.workbench.helpers import add_promise

CALL_AT = datetime(2025, 3, 3, 2, tzinfo=UTC)  # Monday 10:00 in Shanghai


def _state(session: Session, debtor_id: int) -> tuple[str, str | None]:
    case = session.execute(
        select(Case).where(Case.debtor_id == debtor_id, Case.live_debtor_id.is_not(None))
    ).scalar_one()
    return case.state, case.reason


def _call(session: Session, institution_id: int, debtor_id: int, point_id: int) -> int:
    checked = gate.check_contact(
        session,
        institution_id=institution_id,
        debtor_id=debtor_id,
        contact_point_id=point_id,
        channel=Channel.CALL,
        party=Party.DEBTOR,
        at=CALL_AT,
        actor="agent",
    )
    assert checked.decision.allowed, checked.decision
    return checked.record.id


def test_a_dispute_on_the_phone_moves_the_case_through_its_job(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    point = make_contact_point(session, debtor)
    make_account(session, debtor, days_past_due=40)
    cases.sync_cases(session, institution_id=institution.id)
    decision = _call(session, institution.id, debtor.id, point.id)
    attempt = gate.record_outcome(
        session,
        institution_id=institution.id,
        decision_id=decision,
        outcome="dispute",
        happened_at=CALL_AT,
    )
    (job,) = session.execute(select(Job).where(Job.name == "cases.apply_outcome")).scalars()
    apply_outcome(session, dict(job.payload))
    assert _state(session, debtor.id) == ("disputed", None)
    assert attempt.outcome == "dispute"


def test_a_wrong_number_invalidates_the_contact_point(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    point = make_contact_point(session, debtor)
    decision = _call(session, institution.id, debtor.id, point.id)
    gate.record_outcome(
        session,
        institution_id=institution.id,
        decision_id=decision,
        outcome="wrong_number",
        happened_at=CALL_AT,
    )
    session.refresh(point)
    assert point.status == "invalid"
    assert not session.execute(select(Job).where(Job.name == "cases.apply_outcome")).first()


def test_promises_move_the_case(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, days_past_due=40)
    today = local_today(institution.timezone)
    promise = promises.record_promise(
        session,
        institution=institution,
        account=account,
        terms=PromiseTerms(
            amount=10_000, currency="CNY", due_date=today + timedelta(days=2), channel="call"
        ),
        actor="agent",
    )
    # The case opens for the promise even before the next sync.
    assert _state(session, debtor.id) == ("promised", None)
    promises.cancel_promise(session, institution=institution, promise=promise, actor="agent")
    assert _state(session, debtor.id) == ("open", None)
    # A promise that fell due weeks ago with nothing paid breaks, and the case opens again.
    late = add_promise(
        session,
        account,
        amount=10_000,
        promised_on=today - timedelta(days=30),
        due_date=today - timedelta(days=20),
    )
    case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()
    cases.apply_to_case(session, case, CaseEvent.PROMISE_MADE, actor="agent")
    result = promises.reconcile_promises(
        session, institution=institution, as_of=today, actor="cycle"
    )
    assert result.broken == 1
    assert _state(session, debtor.id) == ("open", None)
    assert late.id
