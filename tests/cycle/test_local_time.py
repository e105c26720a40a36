"""The cycle plans each contact inside the debtor's own morning, not the institution's."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from recoup.cycle import runner
from recoup.db import unit_of_work
from recoup.models.account import Account
from recoup.models.compliance import ContactDecision
from recoup.models.cycle import CycleAction
from tests.cycle.helpers import today_of
from tests.factories import make_account, make_debtor, make_institution


def test_a_debtor_three_hours_west_is_called_in_their_own_morning(live_database: str) -> None:
    zones = ("America/New_York", "America/Los_Angeles")
    with unit_of_work() as session:
        institution = make_institution(
            session, code="NYC", jurisdiction="US", timezone=zones[0], currency="USD"
        )
        day = today_of(institution)
        for number, zone in enumerate(zones):
            debtor = make_debtor(session, institution, external_id=f"NYC-D{number}", timezone=zone)
            make_account(
                session,
                debtor,
                external_id=f"NYC-A{number}",
                principal=500_000,
                days_past_due=25,
                due_date=day - timedelta(days=40),
            )

    report = runner.run_cycle(institution_code="NYC", as_of=day, actor="test")

    # At the institution's 09:30 it is 06:30 in California: before, the gate blocked that
    # debtor (US-HRS) every day.
    assert report.status == "completed"
    assert report.blocked_by_rule == {}
    with unit_of_work(write=False) as session:
        rows = session.execute(
            select(Account.external_id, CycleAction.planned_at, ContactDecision.planned_at)
            .join(CycleAction, CycleAction.account_id == Account.id)
            .join(ContactDecision, ContactDecision.id == CycleAction.decision_id)
            .where(ContactDecision.allowed.is_(True))
            .order_by(Account.external_id)
        ).all()
    assert [external_id for external_id, _, _ in rows] == ["NYC-A0", "NYC-A1"]
    for (_external_id, planned, decided), zone in zip(rows, zones, strict=True):
        local = planned.replace(tzinfo=planned.tzinfo or UTC).astimezone(ZoneInfo(zone))
        assert (local.date(), local.time()) == (day, time(9, 30))
        assert decided.replace(tzinfo=decided.tzinfo or UTC) == planned.replace(
            tzinfo=planned.tzinfo or UTC
        )


def test_a_debtor_in_xinjiang_is_called_when_both_clocks_allow(live_database: str) -> None:
    with unit_of_work() as session:
        institution = make_institution(session, code="XJ")
        day = today_of(institution)
        debtor = make_debtor(session, institution, external_id="XJ-D", timezone="Asia/Urumqi")
        make_account(
            session,
            debtor,
            external_id="XJ-A",
            principal=500_000,
            days_past_due=25,
            due_date=day - timedelta(days=40),
        )

    report = runner.run_cycle(institution_code="XJ", as_of=day, actor="test")

    assert report.blocked_by_rule == {}
    with unit_of_work(write=False) as session:
        planned = session.execute(select(CycleAction.planned_at)).scalar_one()
    # 09:30 in Urumqi is 11:30 in Beijing: inside the quiet-hours rule in both clocks.
    expected = datetime.combine(day, time(9, 30), tzinfo=ZoneInfo("Asia/Urumqi"))
    assert planned.replace(tzinfo=planned.tzinfo or UTC) == expected
