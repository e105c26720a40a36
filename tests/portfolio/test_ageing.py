"""The daily cycle's ageing: days past due from the oldest unpaid due date, set-based."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import make_account, make_debtor, make_institution

from recoup.models.account import DelinquencyEvent
from recoup.portfolio import service

DAY = date(2027, 3, 1)


def test_accounts_age_into_their_bucket_once_and_only_forward(session: Session) -> None:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    crossing = make_account(session, debtor, days_past_due=28, due_date=date(2027, 1, 30))
    steady = make_account(session, debtor, days_past_due=10, due_date=date(2027, 2, 18))
    newly = make_account(
        session, debtor, days_past_due=0, due_date=date(2027, 2, 27), status="current"
    )
    snapshot = make_account(session, debtor, days_past_due=90, due_date=date(2027, 2, 1))
    undated = make_account(session, debtor, days_past_due=40, due_date=None)
    settled = make_account(
        session, debtor, days_past_due=5, due_date=date(2027, 1, 1), status="settled"
    )

    result = service.age_accounts(session, institution=institution, as_of=DAY)

    session.expire_all()
    assert (crossing.days_past_due, crossing.bucket) == (30, "M1")
    assert (steady.days_past_due, steady.bucket) == (11, "M1")
    assert (newly.days_past_due, newly.bucket, newly.status) == (2, "M1", "delinquent")
    assert snapshot.days_past_due == 90  # never moved back
    assert undated.days_past_due == 40
    assert settled.days_past_due == 5
    assert result.aged == 3
    events = session.execute(
        select(DelinquencyEvent.account_id, DelinquencyEvent.bucket, DelinquencyEvent.cause)
    ).all()
    assert set(events) == {(newly.id, "M1", "cycle")}

    again = service.age_accounts(session, institution=institution, as_of=DAY)
    assert (again.aged, again.events) == (0, 0)
    later = service.age_accounts(session, institution=institution, as_of=date(2027, 3, 2))
    session.expire_all()
    assert (crossing.days_past_due, crossing.bucket) == (31, "M2")
    assert later.events == 1
