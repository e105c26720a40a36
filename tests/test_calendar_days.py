"""The most date-sensitive paths, run on the days that break date logic, not only on today.

Each test pins the clock of the whole process (the ``time_machine`` fixture) to a day in
``DAYS`` — the first of a month and of a year that is also a Chinese public holiday, the
Spring Festival, a month end, the day US clocks spring forward, months and years ahead —
and then does what a user would do that day without naming the date: record a promise due
at the month's end, read this month's KPIs, give a case to a certified agent, queue today's
letter twice, ask for the next case, check the US contact hours. See "Time in tests" in
CONVENTIONS.md.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from time_machine import TimeMachineFixture

from recoup.cases import service as cases
from recoup.kit.clock import local_today, zone
from recoup.models.cases import Case
from tests.factories import (
    certify,
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.outbox.helpers import approved_template
from tests.outreach.test_letters import LETTER

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"

# Noon in Shanghai (04:00 UTC) of each day, so both zones are on the same date.
DAYS = {
    "new-year-holiday": datetime(2027, 1, 1, 4, tzinfo=UTC),
    "month-end": datetime(2027, 1, 31, 4, tzinfo=UTC),
    "february": datetime(2027, 2, 1, 4, tzinfo=UTC),
    "spring-festival": datetime(2027, 2, 8, 4, tzinfo=UTC),
    "us-clocks-forward": datetime(2027, 3, 14, 16, tzinfo=UTC),
    "us-clocks-back": datetime(2027, 11, 7, 16, tzinfo=UTC),
    "half-a-year-on": datetime(2027, 6, 7, 4, tzinfo=UTC),
    "leap-day-years-on": datetime(2032, 2, 29, 4, tzinfo=UTC),
}


@pytest.fixture(params=list(DAYS.values()), ids=list(DAYS))
def today(request: pytest.FixtureRequest, time_machine: TimeMachineFixture) -> datetime:
    """Move the clock to the day under test (it ticks on from there)."""
    moment: datetime = request.param
    time_machine.move_to(moment)
    return moment


def _local(day: date, hour: int, minute: int, zone_name: str) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone(zone_name))


def test_a_promise_due_at_the_months_end_is_recorded_and_yesterday_is_refused(
    session: Session, today: datetime
) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    account = make_account(session, make_debtor(session, institution))
    give_to_agent(session, account, agent.id)
    day = local_today(SHANGHAI)
    month_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    url = f"/api/v1/accounts/{account.id}/promises"
    with client_for(session) as client:
        late = {"amount": "10", "due_date": (day - timedelta(days=1)).isoformat(), "channel": "sms"}
        assert_problem(client.post(url, json=late, headers=bearer(agent)), 422)
        body = {"amount": "100.00", "due_date": month_end.isoformat(), "channel": "call"}
        created = client.post(url, json=body, headers=bearer(agent))
        assert created.status_code == 201, created.text
        assert created.json()["due_date"] == month_end.isoformat()
        assert created.json()["status"] == "pending"


def test_this_months_kpis_start_on_its_first_day(session: Session, today: datetime) -> None:
    institution = make_institution(session)
    make_account(session, make_debtor(session, institution), days_past_due=40)
    manager = make_user(session, institution, role="manager")
    day = local_today(SHANGHAI)
    with client_for(session) as client:
        response = client.get(
            "/api/v1/kpis", params={"as_of": day.isoformat()}, headers=bearer(manager)
        )
    assert response.status_code == 200, response.text
    assert response.json()["period"] == {
        "from": day.replace(day=1).isoformat(),
        "to": day.isoformat(),
    }


def test_a_lead_gives_a_case_to_a_certified_agent(session: Session, today: datetime) -> None:
    institution = make_institution(session)
    lead = make_user(session, institution, role="team_lead")
    agent = make_user(session, institution, role="agent")
    certify(session, agent)
    debtor = make_debtor(session, institution)
    make_account(session, debtor, days_past_due=40)
    cases.sync_cases(session, institution_id=institution.id)
    case = session.execute(select(Case).where(Case.debtor_id == debtor.id)).scalar_one()
    with client_for(session) as client:
        given = client.put(
            f"/api/v1/cases/{case.id}/owner", json={"owner_id": agent.id}, headers=bearer(lead)
        )
    assert given.status_code == 200, given.text
    assert given.json()["owner_id"] == agent.id


def test_todays_letter_asked_for_twice_is_one_letter(session: Session, today: datetime) -> None:
    institution = make_institution(session)
    template = approved_template(session, institution, channel="letter", body=LETTER)
    debtor = make_debtor(session, institution)
    make_contact_point(session, debtor, kind="address", value="上海市浦东新区世纪大道100号 200120")
    account = make_account(session, debtor)
    manager = make_user(session, institution, role="manager")
    body = {"debtor_id": debtor.id, "template_id": template.id, "account_id": account.id}
    with client_for(session) as client:
        first = client.post("/api/v1/letters", json=body, headers=bearer(manager))
        assert first.status_code == 201, first.text
        assert first.json()["queued"] is True
        again = client.post("/api/v1/letters", json=body, headers=bearer(manager))
    assert again.json()["duplicate"] is True


def test_the_next_case_by_day_and_none_at_night(
    session: Session, today: datetime, time_machine: TimeMachineFixture
) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    certify(session, agent)
    debtor = make_debtor(session, institution)
    make_contact_point(session, debtor, value="13812340000")
    give_to_agent(session, make_account(session, debtor, days_past_due=40), agent.id)
    day = local_today(SHANGHAI)
    time_machine.move_to(_local(day, 11, 0, SHANGHAI))
    with client_for(session) as client:
        found = client.get("/api/v1/work/next", headers=bearer(agent)).json()
        assert found["case"] is not None, found
        time_machine.move_to(_local(day, 23, 30, SHANGHAI))
        night = client.get("/api/v1/work/next", headers=bearer(agent)).json()
    assert night["case"] is None
    (skipped,) = night["skipped"]
    assert skipped["code"] == "blocked"
    next_allowed = datetime.fromisoformat(skipped["next_allowed_at"])
    assert next_allowed == _local(day + timedelta(days=1), 8, 0, SHANGHAI)


def test_us_contact_hours_follow_the_local_clock(session: Session, today: datetime) -> None:
    institution = make_institution(session, jurisdiction="US", timezone=NEW_YORK, currency="USD")
    debtor = make_debtor(session, institution, timezone=NEW_YORK)
    manager = make_user(session, institution, role="manager")
    day = local_today(NEW_YORK)
    early, opening = _local(day, 7, 59, NEW_YORK), _local(day, 8, 0, NEW_YORK)
    with client_for(session) as client:
        checks = [
            client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, "channel": "email", "at": moment.isoformat()},
                headers=bearer(manager),
            ).json()
            for moment in (early, opening)
        ]
    assert checks[0]["allowed"] is False
    assert [reason["rule_id"] for reason in checks[0]["reasons"]] == ["US-HRS"]
    assert datetime.fromisoformat(checks[0]["next_allowed_at"]) == opening
    assert checks[1]["allowed"] is True, checks[1]
