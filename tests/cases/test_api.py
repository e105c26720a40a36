"""The case API: lists scoped to the caller, details with history, state changes, owners."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.cases import service
from recoup.models.cases import Case
from tests.factories import certify, give_to_agent, make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


def _case(session: Session, institution_id: int, debtor_id: int) -> Case:
    return session.execute(
        select(Case).where(Case.institution_id == institution_id, Case.debtor_id == debtor_id)
    ).scalar_one()


def test_agents_see_their_cases_and_leads_see_all(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    colleague = make_user(session, institution, role="agent")
    lead = make_user(session, institution, role="team_lead")
    mine = make_debtor(session, institution)
    make_account(session, mine, days_past_due=40)
    theirs = make_debtor(session, institution)
    make_account(session, theirs, days_past_due=70)
    service.sync_cases(session, institution_id=institution.id)
    my_case = _case(session, institution.id, mine.id)
    their_case = _case(session, institution.id, theirs.id)
    my_case.owner_id = agent.id
    their_case.owner_id = colleague.id
    session.flush()
    with client_for(session) as client:
        listed = client.get("/api/v1/cases", headers=bearer(agent))
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == [my_case.id]
        assert_problem(client.get(f"/api/v1/cases/{their_case.id}", headers=bearer(agent)), 404)
        everything = client.get("/api/v1/cases?state=open", headers=bearer(lead)).json()
        assert everything["total"] == 2
        detail = client.get(f"/api/v1/cases/{my_case.id}", headers=bearer(lead)).json()
        assert detail["accounts"][0]["bucket"] == "M2"
        assert detail["history"][0]["event"] == "opened"
        unowned = client.get("/api/v1/cases?owner=none", headers=bearer(lead)).json()
        assert unowned["total"] == 0
        assert_problem(client.get("/api/v1/cases?state=lost", headers=bearer(lead)), 422)


def test_state_changes_need_a_note_and_decisions_need_a_lead(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    lead = make_user(session, institution, role="team_lead")
    debtor = make_debtor(session, institution)
    account = make_account(session, debtor, days_past_due=40)
    give_to_agent(session, account, agent.id)
    service.sync_cases(session, institution_id=institution.id)
    case = _case(session, institution.id, debtor.id)
    url = f"/api/v1/cases/{case.id}/events"
    with client_for(session) as client:
        paused = client.post(
            url, json={"event": "hardship", "note": "lost job"}, headers=bearer(agent)
        )
        assert paused.status_code == 200, paused.text
        assert (paused.json()["state"], paused.json()["reason"]) == ("paused", "hardship")
        assert_problem(
            client.post(url, json={"event": "resume", "note": "ok"}, headers=bearer(agent)), 403
        )
        assert_problem(client.post(url, json={"event": "resume"}, headers=bearer(lead)), 422)
        resumed = client.post(
            url, json={"event": "resume", "note": "new job"}, headers=bearer(lead)
        )
        assert resumed.json()["state"] == "open"
        assert [row["event"] for row in resumed.json()["history"]][-2:] == ["hardship", "resume"]
        wrong = client.post(url, json={"event": "recall", "note": "x"}, headers=bearer(lead))
        assert "cannot take 'recall'" in str(assert_problem(wrong, 422))


def test_leads_give_cases_to_certified_agents_only(session: Session) -> None:
    institution = make_institution(session)
    lead = make_user(session, institution, role="team_lead")
    certified = make_user(session, institution, role="agent")
    certify(session, certified)
    uncertified = make_user(session, institution, role="agent")
    debtor = make_debtor(session, institution)
    make_account(session, debtor, days_past_due=40)
    service.sync_cases(session, institution_id=institution.id)
    case = _case(session, institution.id, debtor.id)
    url = f"/api/v1/cases/{case.id}/owner"
    with client_for(session) as client:
        refused = client.put(url, json={"owner_id": uncertified.id}, headers=bearer(lead))
        assert "POL-CERT" in str(assert_problem(refused, 422))
        given = client.put(
            url, json={"owner_id": certified.id, "note": "speaks Cantonese"}, headers=bearer(lead)
        )
        assert given.status_code == 200, given.text
        assert given.json()["owner_id"] == certified.id
        assert given.json()["history"][-1]["note"] == "speaks Cantonese"
        assert_problem(client.put(url, json={"owner_id": lead.id}, headers=bearer(lead)), 422)
        assert_problem(client.put(url, json={"owner_id": None}, headers=bearer(certified)), 403)
