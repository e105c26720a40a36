"""The promise API: record, list, cancel, reconcile; problem+json naming fields; scoping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from recoup.kit.clock import utcnow, zone
from recoup.models.workbench import PromiseStatus
from tests.factories import give_to_agent, make_account, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.workbench.helpers import add_payment, add_promise


def _today() -> date:
    return utcnow().astimezone(zone("Asia/Shanghai")).date()


def test_record_list_and_cancel(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    account = make_account(session, make_debtor(session, institution))
    give_to_agent(session, account, agent.id)
    due = _today() + timedelta(days=5)
    with client_for(session) as client:
        created = client.post(
            f"/api/v1/accounts/{account.id}/promises",
            json={"amount": "1234.56", "due_date": due.isoformat(), "channel": "call"},
            headers=bearer(agent),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["amount"] == "1234.56"
        assert body["amount_minor"] == 123_456
        assert body["currency"] == "CNY"
        assert body["status"] == "pending"
        assert body["created_by"] == agent.username

        second = client.post(
            f"/api/v1/accounts/{account.id}/promises",
            json={"amount": "10", "due_date": due.isoformat(), "channel": "sms"},
            headers=bearer(agent),
        )
        problem = assert_problem(second, 409)
        assert "cancel it" in str(problem["detail"])

        listed = client.get(f"/api/v1/accounts/{account.id}/promises?size=1", headers=bearer(agent))
        assert listed.status_code == 200
        assert listed.json()["total"] == 1
        assert listed.json()["pages"] == 1

        cancelled = client.post(f"/api/v1/promises/{body['id']}/cancel", headers=bearer(agent))
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert_problem(
            client.post(f"/api/v1/promises/{body['id']}/cancel", headers=bearer(agent)), 409
        )


def test_validation_problems_name_the_field(session: Session) -> None:
    institution = make_institution(session)
    lead = make_user(session, institution, role="team_lead")
    account = make_account(session, make_debtor(session, institution), principal=10_000)
    today = _today()
    url = f"/api/v1/accounts/{account.id}/promises"
    with client_for(session) as client:
        cases = [
            ({"amount": "12.345", "due_date": today.isoformat(), "channel": "call"}, "amount"),
            ({"amount": "1,000", "due_date": today.isoformat(), "channel": "call"}, "amount"),
            ({"amount": "999999", "due_date": today.isoformat(), "channel": "call"}, "amount"),
            ({"amount": "0", "due_date": today.isoformat(), "channel": "call"}, "amount"),
            (
                {"amount": "10", "due_date": (today - timedelta(1)).isoformat(), "channel": "sms"},
                "due_date",
            ),
            (
                {"amount": "10", "due_date": (today + timedelta(31)).isoformat(), "channel": "sms"},
                "due_date",
            ),
            (
                {
                    "amount": "10",
                    "due_date": today.isoformat(),
                    "channel": "sms",
                    "currency": "USD",
                },
                "currency",
            ),
        ]
        for payload, field in cases:
            problem = assert_problem(client.post(url, json=payload, headers=bearer(lead)), 422)
            fields = [error["field"] for error in problem["errors"]]  # type: ignore[attr-defined]
            assert fields == [field], (payload, problem)
            assert field in str(problem["detail"])
        schema = assert_problem(
            client.post(url, json={"amount": "10", "channel": "fax"}, headers=bearer(lead)), 422
        )
        schema_fields = {error["field"] for error in schema["errors"]}  # type: ignore[attr-defined]
        assert schema_fields == {"body.due_date", "body.channel"}


def test_agents_only_reach_assigned_accounts_and_tenants_are_apart(session: Session) -> None:
    institution = make_institution(session)
    agent = make_user(session, institution, role="agent")
    unassigned = make_account(session, make_debtor(session, institution))
    promise = add_promise(session, unassigned, amount=100, promised_on=_today(), due_date=_today())
    other = make_institution(session)
    outsider = make_user(session, other, role="manager")
    payload = {"amount": "10", "due_date": _today().isoformat(), "channel": "call"}
    with client_for(session) as client:
        for user in (agent, outsider):
            assert_problem(
                client.post(
                    f"/api/v1/accounts/{unassigned.id}/promises", json=payload, headers=bearer(user)
                ),
                404,
            )
            assert_problem(
                client.get(f"/api/v1/accounts/{unassigned.id}/promises", headers=bearer(user)),
                404,
            )
            assert_problem(
                client.post(f"/api/v1/promises/{promise.id}/cancel", headers=bearer(user)), 404
            )
    session.refresh(promise)
    assert promise.status == PromiseStatus.pending


def test_reconcile_is_for_managers(session: Session) -> None:
    institution = make_institution(session)
    manager = make_user(session, institution, role="manager")
    agent = make_user(session, institution, role="agent")
    account = make_account(session, make_debtor(session, institution))
    due = date(2026, 1, 10)
    add_promise(session, account, amount=5_000, promised_on=date(2026, 1, 5), due_date=due)
    add_payment(session, account, amount=5_000, paid_at=datetime(2026, 1, 8, 3, tzinfo=UTC))
    with client_for(session) as client:
        assert_problem(
            client.post(
                "/api/v1/promises/reconcile", json={"as_of": "2026-01-20"}, headers=bearer(agent)
            ),
            403,
        )
        response = client.post(
            "/api/v1/promises/reconcile", json={"as_of": "2026-01-20"}, headers=bearer(manager)
        )
        assert response.status_code == 200, response.text
        assert response.json()["kept"] == 1
        assert response.json()["examined"] == 1
        assert response.json()["escalated_account_ids"] == []
