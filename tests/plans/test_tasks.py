"""A payment is followed, within a minute, by reconciling the account's payment plan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from recoup.db import unit_of_work
from recoup.kit import clock, jobs
from recoup.kit.clock import utcnow
from recoup.models.jobs import Job
from recoup.models.plans import PaymentPlan
from recoup.plans import service
from recoup.portfolio.schemas import PaymentInput
from recoup.portfolio.service import record_payment
from tests.factories import make_account, make_debtor, make_institution


@pytest.fixture
def database(memory_jobs: str) -> str:
    """A live database with jobs kept in memory."""
    return memory_jobs


def test_paying_a_plan_off_completes_it_through_a_job(database: str) -> None:
    with unit_of_work() as session:
        institution = make_institution(session)
        account = make_account(
            session,
            make_debtor(session, institution),
            principal=500_00,
            interest=0,
            fees=0,
            penalty=0,
        )
        plan = service.propose_plan(
            session,
            institution=institution,
            account=account,
            instalments=2,
            start_on=clock.local_today(institution.timezone),
            actor="agent",
            user_id=None,
        )
        plan_id, code = plan.id, institution.code
        record_payment(
            session,
            institution=institution,
            payment=PaymentInput(
                external_id="P-PLAN-1",
                account_external_id=account.external_id,
                amount=500_00,
                currency="CNY",
                paid_at=utcnow(),
            ),
        )
    with unit_of_work(write=False) as session:
        names = sorted(session.execute(select(Job.name)).scalars())
    assert names == ["cases.sync", "plans.reconcile", "strategy.reevaluate_paid"], code
    jobs.drain(now=utcnow() + timedelta(minutes=3))
    with unit_of_work(write=False) as session:
        done = session.get_one(PaymentPlan, plan_id)
        assert (done.status, done.standing, done.paid_amount) == ("completed", "completed", 500_00)
