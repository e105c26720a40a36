"""The workspace API: the next case and my cases, scoped to the caller, read-only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.enums import ContactStatus
from recoup.models.compliance import ContactDecision
from recoup.workspace import service
from tests.identity.helpers import assert_problem, bearer, client_for
from tests.workspace.helpers import DAYTIME, NIGHT, make_desk


def test_the_next_case_and_my_cases(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = make_desk(session)
    desk.phones[0].status = ContactStatus.invalid
    session.flush()
    monkeypatch.setattr(service, "utcnow", lambda: DAYTIME)
    with client_for(session) as client:
        found = client.get("/api/v1/work/next", headers=bearer(desk.agent))
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["case"]["id"] == desk.cases[1].id
        assert body["skipped"] == [
            {
                "case_id": desk.cases[0].id,
                "code": "no_phone",
                "next_allowed_at": None,
                "reasons": [],
            }
        ]
        mine = client.get("/api/v1/work/cases?size=10", headers=bearer(desk.agent)).json()
        assert [item["id"] for item in mine["items"]] == [case.id for case in desk.cases[:3]]
        assert desk.cases[3].id not in [item["id"] for item in mine["items"]]
        filtered = client.get(
            "/api/v1/work/cases?callback_due=true&bucket=M2", headers=bearer(desk.agent)
        )
        assert filtered.json()["total"] == 0
        assert_problem(client.get("/api/v1/work/cases?bucket=M9", headers=bearer(desk.agent)), 422)
        assert_problem(client.get("/api/v1/work/next"), 401)


def test_at_night_every_case_is_passed_over_with_the_reason(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = make_desk(session, count=2)
    monkeypatch.setattr(service, "utcnow", lambda: NIGHT)
    decisions = session.scalar(select(func.count()).select_from(ContactDecision))
    with client_for(session) as client:
        body = client.get("/api/v1/work/next?language=en", headers=bearer(desk.agent)).json()
    assert body["case"] is None
    assert [item["code"] for item in body["skipped"]] == ["blocked", "blocked"]
    assert body["skipped"][0]["next_allowed_at"] is not None
    assert body["skipped"][0]["reasons"]
    assert session.scalar(select(func.count()).select_from(ContactDecision)) == decisions
