"""The compliance HTTP API: the gate, template review and workflow, policy, violations."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.factories import make_account, make_debtor, make_institution
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
        institution = make_institution(session)
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
