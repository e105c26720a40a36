"""The workspace pages: my work, next case, the case page and its contact form, scoped to the agent."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from recoup.models.audit import AuditEvent
from recoup.models.strategy import CaseStrategyState, Strategy, StrategyVersion
from recoup.models.workbench import Promise
from recoup.models.workspace import CaseNote
from recoup.workspace import service
from tests.identity.helpers import client_for, signed_in
from tests.workspace.helpers import DAYTIME, NIGHT, make_desk

ENGLISH = {"Accept-Language": "en"}


@pytest.fixture(autouse=True)
def _daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "utcnow", lambda: DAYTIME)


def test_my_work_lists_my_cases_and_next_opens_the_first(session: Session) -> None:
    desk = make_desk(session)
    with client_for(session) as client:
        signed_in(client, desk.agent)
        page = client.get("/work", headers=ENGLISH)
        assert page.status_code == 200, page.text
        assert page.text.count('data-testid="case-row"') == 3
        assert f'data-case="{desk.cases[3].id}"' not in page.text
        assert "My work" in page.text
        filtered = client.get("/work?state=disputed&bucket=M2&callback_due=1", headers=ENGLISH)
        assert filtered.status_code == 200
        assert 'data-testid="case-row"' not in filtered.text
        nonsense = client.get("/work?state=lost&bucket=M9", headers=ENGLISH)
        assert nonsense.status_code == 200
        taken = client.get("/work/next", headers=ENGLISH, follow_redirects=False)
        assert taken.status_code == 303
        assert taken.headers["location"] == f"/cases/{desk.cases[0].id}?next=1"


def test_nothing_workable_says_why(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = make_desk(session, count=1)
    monkeypatch.setattr(service, "utcnow", lambda: NIGHT)
    with client_for(session) as client:
        signed_in(client, desk.agent)
        page = client.get("/work/next", headers=ENGLISH)
        assert page.status_code == 200
        assert 'data-testid="nothing-workable"' in page.text
        assert 'data-testid="skipped-row"' in page.text
        assert "next allowed Tue,\u00a0Dec\u00a08\u00a008:00" in page.text


def test_the_case_page_shows_the_badge_timeline_and_script_slot(session: Session) -> None:
    desk = make_desk(session, count=1)
    case = desk.cases[0]
    with client_for(session) as client:
        signed_in(client, desk.agent)
        page = client.get(f"/cases/{case.id}", headers=ENGLISH)
        assert page.status_code == 200, page.text
        assert 'data-testid="badge-allowed" data-channel="call"' in page.text
        # No script approved yet: the panel suggests a situation and says none is approved.
        assert 'data-testid="script-panel" data-situation="first_contact"' in page.text
        assert "No approved script for this situation in this language yet" in page.text
        assert 'data-testid="timeline-item" data-kind="case"' in page.text
        assert "138****0000" in page.text or "****" in page.text
        # Another agent's case and another institution's are both "not found".
        assert client.get(f"/cases/{desk.cases[1].id}", headers=ENGLISH).status_code == 404
        other = make_desk(session, count=1)
        assert client.get(f"/cases/{other.cases[0].id}", headers=ENGLISH).status_code == 404


def test_logging_a_call_with_a_promise(session: Session) -> None:
    desk = make_desk(session, count=1)
    case = desk.cases[0]
    with client_for(session) as client:
        csrf = signed_in(client, desk.agent)
        due = (date.today() + timedelta(days=3)).isoformat()
        saved = client.post(
            f"/cases/{case.id}/contacts",
            data={
                "channel": "call",
                "outcome": "promise_made",
                "contact_point_id": str(desk.phones[0].id),
                "note": "pays Friday",
                "promise_amount": "500.00",
                "promise_due": due,
                "script_id": "",
            },
            headers={**ENGLISH, **csrf},
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
        page = client.get(f"/cases/{case.id}", headers=ENGLISH)
        assert 'data-kind="promise" data-status="pending"' in page.text
        assert "pays Friday" in page.text
        promise = session.execute(select(Promise)).scalar_one()
        assert promise.amount == 50_000
        assert session.execute(
            select(AuditEvent).where(AuditEvent.action == "case.contact")
        ).scalar_one()

        bad = client.post(
            f"/cases/{case.id}/contacts",
            data={"channel": "call", "outcome": "no_answer", "promise_amount": "lots"},
            headers={**ENGLISH, **csrf},
        )
        assert bad.status_code == 422
        assert 'data-testid="log-error"' in bad.text
        missing = client.post(
            f"/cases/{case.id}/contacts",
            data={"channel": "call", "outcome": ""},
            headers={**ENGLISH, **csrf},
        )
        assert missing.status_code == 422
        assert "outcome" in missing.text
        theirs = client.post(
            f"/cases/{desk.cases[1].id}/contacts",
            data={"channel": "call", "outcome": "no_answer"},
            headers={**ENGLISH, **csrf},
        )
        assert theirs.status_code == 404


def test_reveal_on_the_case_page_is_audited(session: Session) -> None:
    desk = make_desk(session, count=1)
    case = desk.cases[0]
    with client_for(session) as client:
        csrf = signed_in(client, desk.agent)
        shown = client.post(
            f"/cases/{case.id}/reveal",
            data={"reason": "calling the debtor back"},
            headers={**ENGLISH, **csrf, "HX-Request": "true"},
        )
        assert shown.status_code == 200, shown.text
        assert "13812340000" in shown.text
        refused = client.post(
            f"/cases/{case.id}/reveal", data={"reason": ""}, headers={**ENGLISH, **csrf}
        )
        assert refused.status_code == 422
        assert (
            client.post(
                f"/cases/{desk.cases[1].id}/reveal",
                data={"reason": "curious about it"},
                headers={**ENGLISH, **csrf},
            ).status_code
            == 404
        )


def test_the_case_page_shows_the_strategy_step_once_placed(session: Session) -> None:
    desk = make_desk(session, count=1)
    case = desk.cases[0]
    with client_for(session) as client:
        signed_in(client, desk.agent)
        before = client.get(f"/cases/{case.id}", headers=ENGLISH)
        assert "No strategy step yet" in before.text
        strategy = Strategy(
            institution_id=desk.institution.id, code="CF", name="Consumer", created_by="t"
        )
        session.add(strategy)
        session.flush()
        version = StrategyVersion(
            institution_id=desk.institution.id,
            strategy_id=strategy.id,
            version=1,
            document="{}",
            sha256="0" * 64,
            status="active",
            author="t",
        )
        session.add(version)
        session.flush()
        session.add(
            CaseStrategyState(
                institution_id=desk.institution.id,
                case_id=case.id,
                strategy_version_id=version.id,
                segment="early",
                step="reminder_call",
                entered_on=DAYTIME.date(),
                step_on=DAYTIME.date(),
                reason="day 3 of the early path",
                as_of=DAYTIME.date(),
                updated_at=DAYTIME,
            )
        )
        session.flush()
        after = client.get(f"/cases/{case.id}", headers=ENGLISH)
        assert "reminder_call" in after.text
        assert "day 3 of the early path" in after.text


def test_a_long_timeline_shows_thirty_and_more_on_demand(session: Session) -> None:
    desk = make_desk(session, count=1)
    case = desk.cases[0]
    for number in range(40):
        session.add(
            CaseNote(
                institution_id=desk.institution.id,
                case_id=case.id,
                body=f"note {number}",
                actor="t",
                at=DAYTIME - timedelta(minutes=number),
            )
        )
    session.flush()
    with client_for(session) as client:
        signed_in(client, desk.agent)
        first = client.get(f"/cases/{case.id}", headers=ENGLISH)
        assert first.text.count('data-testid="timeline-item"') == 30
        assert f"/cases/{case.id}?timeline=60#timeline" in first.text
        more = client.get(f"/cases/{case.id}?timeline=60", headers=ENGLISH)
        assert more.text.count('data-testid="timeline-item"') == 41
        assert 'data-testid="timeline-more"' not in more.text
        assert client.get(f"/cases/{case.id}?timeline=0", headers=ENGLISH).status_code == 422


def test_a_call_the_daily_cycle_planned_shows_as_such(session: Session) -> None:
    desk = make_desk(session, count=1)
    case = desk.cases[0]
    service.add_planned_tasks(
        session,
        institution_id=desk.institution.id,
        planned=select(
            literal(case.id).label("case_id"),
            literal("call").label("kind"),
            literal(DAYTIME - timedelta(hours=1)).label("due_at"),
        ),
        actor="cycle",
    )
    with client_for(session) as client:
        signed_in(client, desk.agent)
        english = client.get(f"/cases/{case.id}", headers=ENGLISH)
        chinese = client.get(f"/cases/{case.id}", headers={"Accept-Language": "zh-CN"})
    assert 'data-testid="open-callbacks"' in english.text
    assert "Call planned for" in english.text
    assert "计划于" in chinese.text
    assert "致电（每日批处理）" in chinese.text
