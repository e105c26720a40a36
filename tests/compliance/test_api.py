"""The compliance HTTP API: the gate, template review and workflow, policy, violations."""

from __future__ import annotations

from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.models import Debtor, Institution, User
from recoup.models.compliance import Certification, ContactDecision
from tests.factories import (
    certify,
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.identity.helpers import assert_problem, bearer, client_for, make_user


class TestCheck:
    def test_contract_shape_and_stored_decision(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        account = make_account(session, debtor)
        manager = make_user(session, institution, role="manager")
        body = {
            "debtor_id": debtor.id,
            "channel": "call",
            "party": "debtor",
            "account_id": account.id,
            "at": "2025-03-03T21:00:00+08:00",
        }
        with client_for(session) as client:
            answer = client.post("/api/v1/compliance/check", json=body, headers=bearer(manager))
            assert answer.status_code == 200, answer.text
            result = answer.json()
            assert result["allowed"] is False
            assert [r["rule_id"] for r in result["reasons"]] == ["CN-HRS"]
            assert result["next_allowed_at"] == "2025-03-04T08:00:00+08:00"
            assert isinstance(result["decision_id"], int)
            zh = client.post(
                "/api/v1/compliance/check",
                json=body,
                headers={**bearer(manager), "Accept-Language": "zh-CN,zh;q=0.9"},
            ).json()
            assert "机构政策时段" in zh["reasons"][0]["message"]
            listed = client.get(
                "/api/v1/compliance/decisions?rule_id=CN-HRS", headers=bearer(manager)
            ).json()
        assert listed["total"] == 2
        assert listed["items"][0]["pack_code"] == "CN"

    def test_allowed_answer(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        body = {"debtor_id": debtor.id, "channel": "sms", "at": "2025-03-03T20:59:59+08:00"}
        with client_for(session) as client:
            result = client.post(
                "/api/v1/compliance/check", json=body, headers=bearer(manager)
            ).json()
        assert result["allowed"] is True
        assert result["reasons"] == []
        assert result["next_allowed_at"] is None

    def test_time_without_offset_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        body = {"debtor_id": debtor.id, "channel": "call", "at": "2025-03-03T10:00:00"}
        with client_for(session) as client:
            answer = client.post("/api/v1/compliance/check", json=body, headers=bearer(manager))
        assert answer.status_code == 422

    def test_other_tenants_debtor_is_404(self, session: Session) -> None:
        debtor = make_debtor(session, make_institution(session))
        stranger = make_user(session, make_institution(session), role="manager")
        body = {"debtor_id": debtor.id, "channel": "call", "at": "2025-03-03T10:00:00+08:00"}
        with client_for(session) as client:
            answer = client.post("/api/v1/compliance/check", json=body, headers=bearer(stranger))
        assert_problem(answer, 404)

    def test_uncertified_agent_is_blocked(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        agent = make_user(session, institution, role="agent")
        give_to_agent(session, make_account(session, debtor), agent.id)
        session.flush()
        body = {"debtor_id": debtor.id, "channel": "call", "at": "2025-03-03T10:00:00+08:00"}
        with client_for(session) as client:
            result = client.post(
                "/api/v1/compliance/check", json=body, headers=bearer(agent)
            ).json()
        assert [r["rule_id"] for r in result["reasons"]] == ["POL-CERT"]

    def test_auditor_cannot_check(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        auditor = make_user(session, institution, role="auditor")
        body = {"debtor_id": debtor.id, "channel": "call", "at": "2025-03-03T10:00:00+08:00"}
        with client_for(session) as client:
            answer = client.post("/api/v1/compliance/check", json=body, headers=bearer(auditor))
        assert_problem(answer, 403)


class TestReview:
    def test_review_contract(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        text = "這是法院傳票，再不還就坐 牢"
        body = {"text": text, "locale": "zh-CN", "audience": "debtor", "channel": "sms"}
        with client_for(session) as client:
            result = client.post(
                "/api/v1/templates/review", json=body, headers=bearer(manager)
            ).json()
        assert result["passed"] is False
        spans = [(f["category"], f["rule_id"], f["start"], f["end"]) for f in result["findings"]]
        assert ("false_legal", "CN-LANG", 2, 6) in spans
        for finding in result["findings"]:
            assert text[finding["start"] : finding["end"]] == finding["text"]

    def test_the_institutions_pack_applies_not_the_texts_language(self, session: Session) -> None:
        cn_manager = make_user(session, make_institution(session), role="manager")
        us_institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        us_manager = make_user(session, us_institution, role="manager")
        body = {
            "text": "Hi, your payment is due tomorrow. We know where you live.",
            "locale": "en-US",
            "audience": "debtor",
            "channel": "sms",
        }
        with client_for(session) as client:
            cn = client.post("/api/v1/templates/review", json=body, headers=bearer(cn_manager))
            us = client.post("/api/v1/templates/review", json=body, headers=bearer(us_manager))
        assert [f["rule_id"] for f in cn.json()["findings"]] == ["CN-LANG"]
        assert [f["rule_id"] for f in us.json()["findings"]] == ["US-HARASS", "US-MEDIUM"]

    def test_unknown_locale_is_a_problem(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        body = {"text": "x", "locale": "fr-FR", "audience": "debtor", "channel": "sms"}
        with client_for(session) as client:
            answer = client.post("/api/v1/templates/review", json=body, headers=bearer(manager))
        assert_problem(answer, 422)


class TestTemplateWorkflow:
    def test_draft_submit_approve_by_another_officer(self, session: Session) -> None:
        institution = make_institution(session)
        author = make_user(session, institution, role="compliance_officer")
        reviewer = make_user(session, institution, role="compliance_officer")
        draft = {
            "name": "reminder",
            "channel": "sms",
            "locale": "zh-CN",
            "audience": "debtor",
            "body": "{{ debtor_name }}您好，请于{{ due_date }}前还款。",
        }
        with client_for(session) as client:
            created = client.post("/api/v1/templates", json=draft, headers=bearer(author))
            assert created.status_code == 201, created.text
            template_id = created.json()["id"]
            submitted = client.post(
                f"/api/v1/templates/{template_id}/submit", headers=bearer(author)
            ).json()
            assert submitted["status"] == "submitted"
            own = client.post(
                f"/api/v1/templates/{template_id}/approve", json={}, headers=bearer(author)
            )
            assert_problem(own, 409)
            approved = client.post(
                f"/api/v1/templates/{template_id}/approve",
                json={"note": "ok"},
                headers=bearer(reviewer),
            ).json()
            assert approved["status"] == "approved"
            listed = client.get("/api/v1/templates?status=approved", headers=bearer(author)).json()
        assert [t["id"] for t in listed] == [template_id]


class TestPolicyAndViolations:
    def test_looser_policy_is_refused_with_the_rule(self, session: Session) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        document = {"hours": [{"channels": ["call"], "start": "08:00", "end": "22:30"}]}
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/compliance/policies", json={"document": document}, headers=bearer(officer)
            )
        problem = assert_problem(answer, 422)
        assert "CN-HRS" in str(problem["detail"])

    def test_scan_and_resolve(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        manager = make_user(session, institution, role="manager")
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            queued = client.post(
                "/api/v1/compliance/violations/scan",
                json={"text": "I told him we know where you live", "locale": "en-US"},
                headers=bearer(manager),
            ).json()
            assert [v["rule_id"] for v in queued] == ["US-HARASS"]
            resolved = client.post(
                f"/api/v1/compliance/violations/{queued[0]['id']}/resolve",
                json={"confirmed": True},
                headers=bearer(officer),
            ).json()
            assert resolved["status"] == "confirmed"

    def test_pack_is_viewable(self, session: Session) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            pack = client.get("/api/v1/compliance/packs/US", headers=bearer(officer)).json()
            missing = client.get("/api/v1/compliance/packs/UK", headers=bearer(officer))
        assert "US-7IN7" in {rule["id"] for rule in pack["rules"]}
        assert_problem(missing, 404)


def _certified_agent(session: Session, institution: Institution) -> User:
    agent = make_user(session, institution, role="agent")
    certify(session, agent)
    return agent


def _assigned_debtor(session: Session, institution: Institution, agent: User) -> Debtor:
    debtor = make_debtor(session, institution)
    give_to_agent(session, make_account(session, debtor), agent.id)
    session.flush()
    return debtor


def _owner_and_outsider(session: Session) -> tuple[User, User, Debtor]:
    """Two certified agents of one institution, each with a debtor; the owner's is returned."""
    institution = make_institution(session)
    owner, outsider = (_certified_agent(session, institution) for _ in range(2))
    debtor = _assigned_debtor(session, institution, owner)
    _assigned_debtor(session, institution, outsider)
    return owner, outsider, debtor


CALL = {"channel": "call", "at": "2025-03-03T10:00:00+08:00"}


class TestIdsInBodiesAreScoped:
    """An id sent in a body is loaded as the caller may see it: out of scope is a 404."""

    def test_an_agent_cannot_check_another_agents_debtor_nor_use_up_its_cap(
        self, session: Session
    ) -> None:
        owner, outsider, debtor = _owner_and_outsider(session)
        with client_for(session) as client:
            assert (
                client.get(f"/api/v1/debtors/{debtor.id}", headers=bearer(outsider)).status_code
                == 404
            )
            tries = [
                client.post(
                    "/api/v1/compliance/check",
                    json={"debtor_id": debtor.id, **CALL},
                    headers=bearer(outsider),
                )
                for _ in range(3)
            ]
            own = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, **CALL},
                headers=bearer(owner),
            )
        for answer in tries:
            assert f"no debtor {debtor.id}" in str(assert_problem(answer, 404)["detail"])
        assert own.status_code == 200, own.text
        assert own.json()["allowed"] is True
        stored = session.scalars(
            select(ContactDecision).where(ContactDecision.debtor_id == debtor.id)
        ).all()
        assert [row.actor for row in stored] == [owner.username]

    def test_a_check_does_not_reveal_another_agents_cease_contact(self, session: Session) -> None:
        _owner, outsider, debtor = _owner_and_outsider(session)
        debtor.cease_contact = True
        session.flush()
        with client_for(session) as client:
            answer = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, **CALL},
                headers=bearer(outsider),
            )
        assert_problem(answer, 404)
        assert "CN-STOP" not in answer.text
        assert "cease" not in answer.text

    def test_an_agent_cannot_name_another_agents_account_or_contact_point(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        agent, colleague = (_certified_agent(session, institution) for _ in range(2))
        debtor = _assigned_debtor(session, institution, agent)
        # The debtor's current account is in no case: nobody's work, so not the agent's.
        theirs = make_account(session, debtor, days_past_due=0, status="current")
        other_debtor = _assigned_debtor(session, institution, colleague)
        their_phone = make_contact_point(session, other_debtor)
        session.flush()
        with client_for(session) as client:
            account = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, "account_id": theirs.id, **CALL},
                headers=bearer(agent),
            )
            phone = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, "contact_point_id": their_phone.id, **CALL},
                headers=bearer(agent),
            )
        assert f"no account {theirs.id}" in str(assert_problem(account, 404)["detail"])
        assert f"no contact point {their_phone.id}" in str(assert_problem(phone, 404)["detail"])

    def test_unknown_ids_in_a_check_are_404(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            answers = [
                client.post("/api/v1/compliance/check", json=body, headers=bearer(manager))
                for body in (
                    {"debtor_id": 2**62, **CALL},
                    {"debtor_id": debtor.id, "account_id": 2**62, **CALL},
                    {"debtor_id": debtor.id, "contact_point_id": 2**62, **CALL},
                )
            ]
        for answer in answers:
            assert_problem(answer, 404)

    def test_an_agent_cannot_record_the_outcome_of_another_agents_decision(
        self, session: Session
    ) -> None:
        owner, outsider, debtor = _owner_and_outsider(session)
        outcome = {"outcome": "no_answer", "effective": False, "happened_at": CALL["at"]}
        with client_for(session) as client:
            checked = client.post(
                "/api/v1/compliance/check",
                json={"debtor_id": debtor.id, **CALL},
                headers=bearer(owner),
            ).json()
            assert checked["allowed"] is True
            path = f"/api/v1/compliance/decisions/{checked['decision_id']}/outcome"
            stolen = client.post(path, json=outcome, headers=bearer(outsider))
            own = client.post(path, json=outcome, headers=bearer(owner))
        assert_problem(stolen, 404)
        assert own.status_code == 200, own.text

    def test_scanning_a_note_about_another_tenants_or_an_unknown_debtor_is_404(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        officer = make_user(session, institution, role="compliance_officer")
        foreign = make_debtor(session, make_institution(session))
        note = {"text": "I told him we know where you live", "locale": "en-US"}
        with client_for(session) as client:
            answers = [
                client.post(
                    "/api/v1/compliance/violations/scan",
                    json={**note, "debtor_id": debtor_id},
                    headers=bearer(manager),
                )
                for debtor_id in (foreign.id, 2**62)
            ]
            queued = client.get("/api/v1/compliance/violations", headers=bearer(officer)).json()
        for answer in answers:
            assert_problem(answer, 404)
        assert queued == []

    def test_certificates_go_only_to_active_agents_of_the_institution(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        agent = make_user(session, institution, role="agent")
        auditor = make_user(session, institution, role="auditor")
        stranger = make_user(session, make_institution(session), role="agent")
        grant = {"course": "compliance", "issued_on": "2025-01-01", "expires_on": "2026-01-01"}
        with client_for(session) as client:

            def post(user_id: int) -> Response:
                return client.post(
                    "/api/v1/compliance/certifications",
                    json={**grant, "user_id": user_id},
                    headers=bearer(officer),
                )

            granted, foreign, unknown, not_agent = (
                post(agent.id),
                post(stranger.id),
                post(2**62),
                post(auditor.id),
            )
        assert granted.status_code == 201, granted.text
        assert f"no user {stranger.id}" in str(assert_problem(foreign, 404)["detail"])
        assert_problem(unknown, 404)
        assert "not an active agent" in str(assert_problem(not_agent, 422)["detail"])
        holders = session.scalars(select(Certification.user_id)).all()
        assert holders == [agent.id]

    def test_filtering_decisions_by_another_tenants_debtor_is_404(self, session: Session) -> None:
        institution = make_institution(session)
        manager = make_user(session, institution, role="manager")
        foreign = make_debtor(session, make_institution(session))
        with client_for(session) as client:
            answer = client.get(
                f"/api/v1/compliance/decisions?debtor_id={foreign.id}", headers=bearer(manager)
            )
        assert_problem(answer, 404)
