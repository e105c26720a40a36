"""The payment plan API: propose, list, four-eyes approval, cancel; fields named; scoping."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from recoup.kit.clock import utcnow, zone
from tests.factories import give_to_agent, make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


def _today() -> date:
    return utcnow().astimezone(zone("Asia/Shanghai")).date()


def test_propose_approve_list_and_cancel(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    manager = make_user(session, institution, role="manager")
    account = make_account(
        session,
        make_debtor(session, institution),
        principal=10_000_00,
        interest=0,
        fees=0,
        penalty=0,
    )
    give_to_agent(session, account, agent.id)
    url = f"/api/v1/accounts/{account.id}/plans"
    with client_for(session) as client:
        created = client.post(
            url,
            json={
                "instalments": 4,
                "start_on": _today().isoformat(),
                "discount": "2000",
                "down_payment": "1000.00",
            },
            headers=bearer(agent),
        )
        assert created.status_code == 201, created.text
        plan = created.json()
        assert (plan["status"], plan["total"], plan["total_minor"]) == (
            "pending_approval",
            "8000.00",
            8_000_00,
        )
        amounts = [item["amount_minor"] for item in plan["instalments"]]
        assert amounts == [1_000_00, 1_750_00, 1_750_00, 1_750_00, 1_750_00]

        # The agent cannot approve (no permission); the manager can.
        assert_problem(
            client.post(f"/api/v1/plans/{plan['id']}/approve", headers=bearer(agent)), 403
        )
        approved = client.post(f"/api/v1/plans/{plan['id']}/approve", headers=bearer(manager))
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "active"
        assert approved.json()["decided_by"] == manager.username

        listed = client.get(url, headers=bearer(agent))
        assert listed.json()["total"] == 1
        cancelled = client.post(f"/api/v1/plans/{plan['id']}/cancel", headers=bearer(agent))
        assert cancelled.json()["status"] == "cancelled"
        assert_problem(
            client.post(f"/api/v1/plans/{plan['id']}/cancel", headers=bearer(agent)), 409
        )


def test_refusals_name_the_field_and_other_tenants_see_nothing(session: Session) -> None:
    institution = make_institution(session)
    lead = make_user(session, institution, role="team_lead")
    account = make_account(session, make_debtor(session, institution))
    stranger = make_user(session, make_institution(session), role="manager")
    url = f"/api/v1/accounts/{account.id}/plans"
    today = _today().isoformat()
    with client_for(session) as client:
        for body, field in (
            ({"instalments": 3, "start_on": today, "discount": "1,000"}, "discount"),
            ({"instalments": 3, "start_on": today, "down_payment": "-5"}, "down_payment"),
            ({"instalments": 3, "start_on": "2020-01-01"}, "start_on"),
            ({"instalments": 99, "start_on": today}, "instalments"),
        ):
            problem = assert_problem(client.post(url, json=body, headers=bearer(lead)), 422)
            assert field in str(problem), (body, problem)
        assert_problem(client.get(url, headers=bearer(stranger)), 404)
