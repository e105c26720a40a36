"""Bad input to the compliance API is a 422 problem, never a 500 and never stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.models.compliance import ContactDecision, MessageTemplate
from tests.factories import make_contact_point, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user

DRAFT = {
    "name": "reminder",
    "channel": "sms",
    "locale": "zh-CN",
    "audience": "debtor",
    "body": "您好，请按时还款。",
}


class TestCheckMoments:
    @pytest.mark.parametrize(
        "at",
        [
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59+14:00",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00-14:00",
        ],
    )
    def test_moments_at_the_edges_of_time_are_422(self, session: Session, at: str) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        make_contact_point(session, debtor)
        lead = make_user(session, institution, role="team_lead")
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, "channel": "sms", "at": at},
                headers=bearer(lead),
            )
        body = assert_problem(answer, 422)
        assert "body.at" in str(body["detail"])
        assert session.scalar(select(func.count()).select_from(ContactDecision)) == 0

    def test_an_id_beyond_64_bits_is_422(self, session: Session) -> None:
        institution = make_institution(session)
        lead = make_user(session, institution, role="team_lead")
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": 2**70, "channel": "sms", "at": "2026-03-02T10:00:00+08:00"},
                headers=bearer(lead),
            )
        assert_problem(answer, 422)


class TestTemplateText:
    @pytest.mark.parametrize("name", ["reminder\u202egnp.exe", "reminder\x00", "@SUM(A1)"])
    def test_template_names_imports_would_refuse_are_422(self, session: Session, name: str) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/templates", json={**DRAFT, "name": name}, headers=bearer(officer)
            )
        detail = str(assert_problem(answer, 422)["detail"])
        assert "body.name" in detail or "NUL" in detail
        assert session.scalar(select(func.count()).select_from(MessageTemplate)) == 0

    def test_a_review_note_with_an_rtl_override_is_422(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="compliance_officer")
        reviewer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            created = client.post("/api/v1/templates", json=DRAFT, headers=bearer(author)).json()
            client.post(f"/api/v1/templates/{created['id']}/submit", headers=bearer(author))
            answer = client.post(
                f"/api/v1/templates/{created['id']}/approve",
                json={"note": "ok\u202e"},
                headers=bearer(reviewer),
            )
            assert_problem(answer, 422)
            listed = client.get("/api/v1/templates?status=submitted", headers=bearer(author))
        assert [template["id"] for template in listed.json()] == [created["id"]]


class TestNumbersAndDates:
    def test_a_policy_version_beyond_32_bits_is_422(self, session: Session) -> None:
        officer = make_user(session, make_institution(session), role="compliance_officer")
        with client_for(session) as client:
            answer = client.post(
                f"/api/v1/compliance/policies/{2**40}/approve", headers=bearer(officer)
            )
        assert_problem(answer, 422)

    @pytest.mark.parametrize(
        ("issued_on", "expires_on"), [("1592-02-22", "2027-01-01"), ("2026-01-01", "8476-08-28")]
    )
    def test_certification_dates_outside_the_supported_years_are_422(
        self, session: Session, issued_on: str, expires_on: str
    ) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        agent = make_user(session, institution, role="agent")
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/compliance/certifications",
                json={
                    "user_id": agent.id,
                    "course": "催收合规培训",
                    "issued_on": issued_on,
                    "expires_on": expires_on,
                },
                headers=bearer(officer),
            )
        assert "between the years" in str(assert_problem(answer, 422)["detail"])
