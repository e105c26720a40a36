"""Revealed PII is never kept by a browser or proxy cache (API and page)."""

from fastapi import Response
from sqlalchemy.orm import Session
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import bearer, client_for, make_user

from recoup.identity.dependencies import CSRF_HEADER, SESSION_COOKIE, login_session
from recoup.models import User

PHONE = "13812345678"


def _agent_with_debtor(session: Session) -> tuple[User, int]:
    institution = make_institution(session)
    debtor = make_debtor(session, institution)
    make_contact_point(session, debtor, value=PHONE)
    account = make_account(session, debtor)
    agent = make_user(session, institution, role="agent")
    give_to_agent(session, account, agent.id)
    session.flush()
    return agent, debtor.id


class TestRevealIsNotCached:
    def test_the_api_answer_says_no_store(self, session: Session) -> None:
        agent, debtor_id = _agent_with_debtor(session)
        with client_for(session) as client:
            response = client.post(
                f"/api/v1/debtors/{debtor_id}/reveal",
                json={"reason": "debtor asked to confirm identity"},
                headers=bearer(agent),
            )
        assert response.status_code == 200, response.text
        assert response.json()["contact_points"][0]["value"] == PHONE
        assert response.headers["cache-control"] == "no-store"

    def test_the_page_with_revealed_values_says_no_store(self, session: Session) -> None:
        agent, debtor_id = _agent_with_debtor(session)
        carrier = Response()
        csrf = login_session(carrier, agent)
        cookie = carrier.headers["set-cookie"].split(f"{SESSION_COOKIE}=")[1].split(";")[0]
        with client_for(session) as client:
            client.cookies.set(SESSION_COOKIE, cookie)
            response = client.post(
                f"/debtors/{debtor_id}/reveal",
                data={"reason": "debtor asked to confirm identity"},
                headers={CSRF_HEADER: csrf},
            )
        assert response.status_code == 200, response.text
        assert PHONE in response.text
        assert response.headers["cache-control"] == "no-store"
