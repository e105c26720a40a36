"""The portfolio read API: paginated, masked, tenant- and case-scoped, reveal audited."""

from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

from recoup.models import AuditEvent

NAME = "欧阳娜娜"
NATIONAL_ID = "110101199003074477"
PHONE = "13812345678"


def _portfolio(session: Session) -> tuple:
    institution = make_institution(session)
    debtor = make_debtor(session, institution, name=NAME, national_id=NATIONAL_ID)
    make_contact_point(session, debtor, value=PHONE)
    account = make_account(session, debtor)
    return institution, debtor, account


class TestLists:
    def test_debtors_are_masked_and_paginated(self, session: Session) -> None:
        institution, debtor, _ = _portfolio(session)
        for _ in range(3):
            make_debtor(session, institution, national_id=None)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            page = client.get("/api/v1/debtors?size=2&page=1", headers=bearer(manager)).json()
            assert (page["total"], page["pages"], len(page["items"])) == (4, 2, 2)
            first = page["items"][0]
            assert first["id"] == debtor.id
            assert first["name"] == "欧***"
            assert first["national_id"] == "110101********4477"
            detail = client.get(f"/api/v1/debtors/{debtor.id}", headers=bearer(manager))
        text = detail.text
        assert NAME not in text
        assert NATIONAL_ID not in text
        assert PHONE not in text
        assert detail.json()["contact_points"][0]["value"] == "138****5678"
        assert detail.json()["accounts"][0]["balance"] == 1_065_000

    def test_exact_search_through_the_blind_index(self, session: Session) -> None:
        institution, debtor, _ = _portfolio(session)
        make_debtor(session, institution, national_id="110101199001010011")
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            by_phone = client.get(
                "/api/v1/debtors", params={"phone": "138 1234 5678"}, headers=bearer(manager)
            ).json()
            by_id = client.get(
                "/api/v1/debtors",
                params={"national_id": NATIONAL_ID.lower()},
                headers=bearer(manager),
            ).json()
            nothing = client.get(
                "/api/v1/debtors", params={"phone": "13812345"}, headers=bearer(manager)
            ).json()
        assert [item["id"] for item in by_phone["items"]] == [debtor.id]
        assert [item["id"] for item in by_id["items"]] == [debtor.id]
        assert nothing["total"] == 0

    def test_accounts_list_and_detail(self, session: Session) -> None:
        institution, debtor, account = _portfolio(session)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            listed = client.get(
                f"/api/v1/accounts?debtor_id={debtor.id}", headers=bearer(manager)
            ).json()
            one = client.get(f"/api/v1/accounts/{account.id}", headers=bearer(manager)).json()
        assert [item["id"] for item in listed["items"]] == [account.id]
        assert one["bucket"] == "M2"
        assert one["currency"] == "CNY"


class TestIsolation:
    def test_another_tenants_ids_are_404(self, session: Session) -> None:
        _, debtor, account = _portfolio(session)
        stranger = make_user(session, make_institution(session), role="manager")
        with client_for(session) as client:
            assert_problem(
                client.get(f"/api/v1/debtors/{debtor.id}", headers=bearer(stranger)), 404
            )
            assert_problem(
                client.get(f"/api/v1/accounts/{account.id}", headers=bearer(stranger)), 404
            )
            assert client.get("/api/v1/debtors", headers=bearer(stranger)).json()["total"] == 0
            search = client.get(
                "/api/v1/debtors", params={"phone": PHONE}, headers=bearer(stranger)
            ).json()
        assert search["total"] == 0

    def test_an_agent_sees_only_assigned_cases(self, session: Session) -> None:
        institution, debtor, account = _portfolio(session)
        agent = make_user(session, institution, role="agent")
        other = make_user(session, institution, role="agent")
        give_to_agent(session, account, agent.id)
        with client_for(session) as client:
            assert (
                client.get(f"/api/v1/debtors/{debtor.id}", headers=bearer(agent)).status_code == 200
            )
            assert client.get("/api/v1/accounts", headers=bearer(agent)).json()["total"] == 1
            assert_problem(client.get(f"/api/v1/debtors/{debtor.id}", headers=bearer(other)), 404)
            assert client.get("/api/v1/accounts", headers=bearer(other)).json()["total"] == 0


class TestReveal:
    def test_reveal_needs_a_reason_and_is_audited(self, session: Session) -> None:
        institution, debtor, account = _portfolio(session)
        agent = make_user(session, institution, role="agent")
        give_to_agent(session, account, agent.id)
        url = f"/api/v1/debtors/{debtor.id}/reveal"
        with client_for(session) as client:
            assert_problem(client.post(url, json={}, headers=bearer(agent)), 422)
            assert_problem(client.post(url, json={"reason": "  "}, headers=bearer(agent)), 422)
            response = client.post(
                url, json={"reason": "debtor asked to confirm identity"}, headers=bearer(agent)
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == NAME
        assert body["national_id"] == NATIONAL_ID
        assert body["contact_points"][0]["value"] == PHONE
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.reveal")).one()
        assert event.actor == agent.username
        assert event.details["reason"] == "debtor asked to confirm identity"
        assert NAME not in str(event.details)
        assert PHONE not in str(event.details)

    def test_roles_without_reveal_and_other_cases_are_refused(self, session: Session) -> None:
        institution, debtor, _account = _portfolio(session)
        auditor = make_user(session, institution, role="auditor")
        agent = make_user(session, institution, role="agent")
        url = f"/api/v1/debtors/{debtor.id}/reveal"
        with client_for(session) as client:
            assert_problem(
                client.post(url, json={"reason": "curious about it"}, headers=bearer(auditor)), 403
            )
            assert_problem(
                client.post(url, json={"reason": "not my case at all"}, headers=bearer(agent)), 404
            )
        assert (
            session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.reveal")).all() == []
        )
