"""Payment plans over the database: limits, four eyes, the case's state and reconciliation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.kit import clock
from recoup.kit.errors import Conflict, PermissionDenied, ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.models.audit import AuditEvent
from recoup.models.cases import Case
from recoup.models.institution import Institution
from recoup.plans import service
from recoup.plans.rules import Frequency
from recoup.portfolio.schemas import PaymentInput, ReversalInput
from recoup.portfolio.service import record_payments, reverse_payments
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import make_user
from tests.workbench.helpers import add_payment


def today(institution: Institution) -> date:
    return clock.local_today(institution.timezone)


def case_state(session: Session, debtor_id: int) -> str:
    return session.execute(
        select(Case.state).where(Case.debtor_id == debtor_id, Case.live_debtor_id.is_not(None))
    ).scalar_one()


def test_a_plan_within_limits_runs_at_once_and_puts_the_case_on_plan(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, principal=9_000_00, interest=0, fees=0, penalty=0)
    plan = service.propose_plan(
        session,
        institution=institution,
        account=account,
        instalments=3,
        start_on=today(institution),
        actor="agent",
        user_id=None,
    )
    assert (plan.status, plan.total, plan.needs_approval) == ("active", 9_000_00, False)
    views = service.account_plans(
        session,
        institution_id=institution.id,
        account_id=account.id,
        page=PageRequest(1, 10),
    )
    assert [row.amount for row in views.items[0].instalments] == [3_000_00] * 3
    assert case_state(session, debtor.id) == "on_plan"
    with pytest.raises(Conflict):
        service.propose_plan(
            session,
            institution=institution,
            account=account,
            instalments=2,
            start_on=today(institution),
            actor="agent",
            user_id=None,
        )


def test_a_large_discount_waits_for_another_persons_approval(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    manager = make_user(session, institution, role="manager")
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, principal=10_000_00, interest=0, fees=0, penalty=0)
    plan = service.propose_plan(
        session,
        institution=institution,
        account=account,
        instalments=2,
        start_on=today(institution),
        discount=2_000_00,
        actor=agent.username,
        user_id=agent.id,
    )
    assert (plan.status, plan.total) == ("pending_approval", 8_000_00)
    assert session.scalar(select(Case.state).where(Case.debtor_id == debtor.id)) is None
    with pytest.raises(PermissionDenied, match="four eyes"):
        service.decide_plan(
            session,
            institution=institution,
            plan=plan,
            approve=True,
            actor=agent.username,
            user_id=agent.id,
        )
    service.decide_plan(
        session,
        institution=institution,
        plan=plan,
        approve=True,
        actor=manager.username,
        user_id=manager.id,
    )
    assert (plan.status, plan.decided_by) == ("active", manager.username)
    assert case_state(session, debtor.id) == "on_plan"
    with pytest.raises(ValidationFailed, match="discount"):
        service.propose_plan(
            session,
            institution=institution,
            account=make_account(session, debtor, principal=1_000_00),
            instalments=2,
            start_on=today(institution),
            discount=900_00,
            actor="agent",
            user_id=None,
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"instalments": 0}, "instalments"),
        ({"instalments": 99}, "instalments"),
        ({"start_on": date(2020, 1, 1)}, "start_on"),
        ({"down_payment": 10**12}, "down_payment"),
    ],
)
def test_refusals_name_the_field(session: Session, changes: dict[str, object], field: str) -> None:
    institution = make_institution(session)
    account = make_account(session, make_debtor(session, institution))
    options: dict[str, object] = {"instalments": 3, "start_on": today(institution)} | changes
    with pytest.raises(ValidationFailed) as refused:
        service.propose_plan(
            session,
            institution=institution,
            account=account,
            actor="agent",
            user_id=None,
            **options,  # type: ignore[arg-type]
        )
    assert refused.value.extra["errors"][0]["field"] == field


def test_reconciliation_completes_or_breaks_plans_and_moves_the_case(session: Session) -> None:
    institution = make_institution(session)
    start = today(institution)
    paying = make_debtor(session, institution)
    good = make_account(session, paying, principal=600_00, interest=0, fees=0, penalty=0)
    silent = make_debtor(session, institution)
    bad = make_account(session, silent, principal=600_00, interest=0, fees=0, penalty=0)
    plans = [
        service.propose_plan(
            session,
            institution=institution,
            account=account,
            instalments=2,
            start_on=start,
            frequency=Frequency.WEEKLY,
            actor="agent",
            user_id=None,
        )
        for account in (good, bad)
    ]
    add_payment(session, good, amount=600_00, paid_at=datetime.now(UTC))
    result = service.reconcile_plans(
        session, institution=institution, as_of=start + timedelta(days=30), actor="cycle"
    )
    assert (result.examined, result.completed, result.broken) == (2, 1, 1)
    assert [plan.status for plan in plans] == ["completed", "broken"]
    assert plans[1].overdue_amount == 600_00
    closed = session.execute(select(Case).where(Case.debtor_id == paying.id)).scalar_one()
    assert (closed.state, closed.reason) == ("closed", "settled")
    assert case_state(session, silent.id) == "open"
    assert session.execute(
        select(AuditEvent).where(AuditEvent.action == "plan.reconcile")
    ).scalar_one()


def test_cancelling_a_running_plan_reopens_the_case(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor)
    plan = service.propose_plan(
        session,
        institution=institution,
        account=account,
        instalments=2,
        start_on=today(institution),
        actor="agent",
        user_id=None,
    )
    service.cancel_plan(session, institution=institution, plan=plan, actor="agent")
    assert plan.status == "cancelled"
    assert case_state(session, debtor.id) == "open"
    with pytest.raises(Conflict):
        service.cancel_plan(session, institution=institution, plan=plan, actor="agent")


def test_a_plan_a_reversed_payment_completed_runs_again_on_the_payments_that_stand(
    session: Session,
) -> None:
    institution = make_institution(session)
    start = today(institution)
    account = make_account(
        session, make_debtor(session, institution), principal=600_00, interest=0, fees=0, penalty=0
    )
    plan = service.propose_plan(
        session,
        institution=institution,
        account=account,
        instalments=2,
        start_on=start,
        frequency=Frequency.WEEKLY,
        actor="agent",
        user_id=None,
    )
    (paid,) = record_payments(
        session,
        institution=institution,
        payments=[PaymentInput("PLAN-PAY", account.external_id, 600_00, "CNY", datetime.now(UTC))],
    )
    assert paid.status == "applied"
    service.reconcile_plans(session, institution=institution, as_of=start, actor="cycle")
    assert plan.status == "completed"
    (reversed_outcome,) = reverse_payments(
        session,
        institution=institution,
        reversals=[ReversalInput("PLAN-PAY", datetime.now(UTC), "direct debit returned")],
    )
    assert reversed_outcome.status == "reversed"
    assert (plan.status, plan.resolved_at) == ("active", None)
    # Followed again without the money, the plan falls behind and is broken after its grace.
    result = service.reconcile_plans(
        session, institution=institution, as_of=start + timedelta(days=30), actor="cycle"
    )
    assert result.broken == 1
    assert (plan.status, plan.paid_amount) == ("broken", 0)
