"""Call lists through the gate, dialer CSV, click-to-call links and the call-result webhook."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.contact.rules import AttemptStatus
from recoup.identity.scoping import institution_scope
from recoup.kit.errors import NotFound, PermissionDenied, ValidationFailed
from recoup.models.audit import AuditEvent
from recoup.models.compliance import ComplianceViolation
from recoup.models.contact import ContactAttempt
from recoup.outreach.dialer import rules, service
from recoup.outreach.service import ReportInput
from tests.factories import make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user
from tests.outreach.helpers import api_key, owned_cases

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 3, 3)
MORNING = datetime(2025, 3, 3, 10, tzinfo=SHANGHAI)


class TestRules:
    @pytest.mark.parametrize(
        ("value", "cell"),
        [
            ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("+8613812345678", "+8613812345678"),
            ("13812345678", "13812345678"),
            ("D-1", "D-1"),
            (None, ""),
        ],
    )
    def test_cells_never_run_as_formulas(self, value: object, cell: str) -> None:
        assert rules.safe_cell(value) == cell

    def test_links(self) -> None:
        links = rules.call_links("+86 138-1234-5678", sip_template="sip:{number}@pbx.example.com")
        assert links.tel == "tel:+8613812345678"
        assert links.sip == "sip:+8613812345678@pbx.example.com"
        assert rules.call_links("13812345678", sip_template=None).sip is None

    def test_sip_templates(self) -> None:
        assert rules.sip_template_problem("sip:{number}@pbx") is None
        assert rules.sip_template_problem("http://{number}") is not None
        assert rules.sip_template_problem("sip:pbx") is not None


def _build(session: Session, institution, agent, **extra):  # type: ignore[no-untyped-def]
    principal = institution_scope(institution.id, actor="lead")
    return service.build_call_list(
        session,
        principal=principal,
        institution=institution,
        agent_id=agent.id,
        day=DAY,
        now=MORNING,
        **extra,
    )


class TestBuild:
    def test_each_number_is_put_to_the_gate_and_blocked_rows_say_why(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=3)
        portfolio.debtors[1].cease_contact = True
        session.flush()
        work_list, views = _build(session, institution, portfolio.agent)
        assert (work_list.allowed, work_list.blocked) == (2, 1)
        blocked = views[-1]
        assert blocked.debtor.id == portfolio.debtors[1].id
        assert not blocked.entry.allowed
        assert blocked.entry.reasons[0]["rule_id"] == "CN-STOP"
        assert blocked.entry.decision_id is not None
        # A dry run reserves nothing: no contact is planned by building a list.
        assert session.scalar(select(func.count()).select_from(ContactAttempt)) == 0

    def test_no_phone_is_a_blocked_row(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1, phones=False)
        work_list, views = _build(session, institution, portfolio.agent)
        assert work_list.blocked == 1
        assert views[0].entry.reasons[0]["code"] == "no_contact_point"

    def test_an_uncertified_agent_gets_a_blocked_list(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        other = make_user(session, institution, role="agent")
        portfolio.cases[0].owner_id = other.id
        session.flush()
        work_list, views = _build(session, institution, other)
        assert work_list.blocked == 1
        assert views[0].entry.reasons[0]["rule_id"] == "POL-CERT"

    def test_agents_build_their_own_lists_only(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        colleague = make_user(session, institution, role="agent")
        from recoup.identity.principal import principal_for_user

        with pytest.raises(NotFound):
            service.build_call_list(
                session,
                principal=principal_for_user(colleague),
                institution=institution,
                agent_id=portfolio.agent.id,
                day=DAY,
                now=MORNING,
            )


class TestExport:
    def test_masked_unless_revealed_with_a_reason_and_audited(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=2)
        portfolio.debtors[0].external_id = '=HYPERLINK("http://evil")'
        portfolio.debtors[1].cease_contact = True
        session.flush()
        work_list, _views = _build(session, institution, portfolio.agent)
        from recoup.identity.principal import principal_for_user

        agent = principal_for_user(portfolio.agent)
        masked = service.export_call_list(
            session, principal=agent, institution=institution, list_id=work_list.id
        )
        rows = list(csv.reader(io.StringIO(masked.text)))
        assert rows[0] == list(rules.CSV_COLUMNS)
        assert len(rows) == 2  # the blocked entry is not exported
        row = dict(zip(rows[0], rows[1], strict=True))
        assert row["phone"] != "13812340000"
        assert "*" in row["phone"]
        assert row["debtor_ref"].startswith("'=")
        with pytest.raises(ValidationFailed, match="reason"):
            service.export_call_list(
                session,
                principal=agent,
                institution=institution,
                list_id=work_list.id,
                reveal_reason="x",
            )
        revealed = service.export_call_list(
            session,
            principal=agent,
            institution=institution,
            list_id=work_list.id,
            reveal_reason="load the preview dialer",
        )
        row = dict(zip(*list(csv.reader(io.StringIO(revealed.text)))[:2], strict=True))
        assert row["phone"] == "+8613812340000"
        audits = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "outreach.call_list_exported")
        ).all()
        assert [event.details["revealed"] for event in audits] == [False, True]
        assert audits[1].details["reason"] == "load the preview dialer"
        auditor = make_user(session, institution, role="auditor")
        with pytest.raises(PermissionDenied):
            service.export_call_list(
                session,
                principal=principal_for_user(auditor),
                institution=institution,
                list_id=work_list.id,
                reveal_reason="curious about it",
            )


def _result(entry_id: int, call_id: str = "c-1", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "call_id": call_id,
        "entry_id": entry_id,
        "started_at": "2025-03-03T10:30:00+08:00",
        "outcome": "right_party",
        "duration_seconds": 95,
    }
    body.update(extra)
    return body


class TestWebhook:
    def test_idempotent_by_call_id_and_logged_once(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        _list, views = _build(session, institution, portfolio.agent)
        entry_id = views[0].entry.id
        key = api_key(session, institution, "calls:report")
        with client_for(session) as client:
            first = client.post("/api/v1/dialer/results", json=_result(entry_id), headers=key)
            assert first.status_code == 201, first.text
            assert first.json()["violation"] is False
            again = client.post("/api/v1/dialer/results", json=_result(entry_id), headers=key)
            assert again.status_code == 200
            assert again.json()["replayed"] is True
            assert again.json()["id"] == first.json()["id"]
            other = _result(entry_id, outcome="no_answer")
            assert_problem(client.post("/api/v1/dialer/results", json=other, headers=key), 409)
        attempts = session.scalars(select(ContactAttempt)).all()
        assert [(a.status, a.outcome, a.duration_seconds) for a in attempts] == [
            (AttemptStatus.MADE, "right_party", 95)
        ]

    def test_auth_404_and_422(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        _list, views = _build(session, institution, portfolio.agent)
        entry_id = views[0].entry.id
        elsewhere = make_institution(session)
        foreign = api_key(session, elsewhere, "calls:report")
        unscoped = api_key(session, institution, "payments:write")
        key = api_key(session, institution, "calls:report")
        agent = make_user(session, institution, role="agent")
        with client_for(session) as client:
            url = "/api/v1/dialer/results"
            assert_problem(client.post(url, json=_result(entry_id)), 401)
            assert_problem(client.post(url, json=_result(entry_id), headers=unscoped), 403)
            assert_problem(client.post(url, json=_result(entry_id), headers=bearer(agent)), 403)
            assert_problem(client.post(url, json=_result(entry_id), headers=foreign), 404)
            assert_problem(client.post(url, json=_result(entry_id + 1000), headers=key), 404)
            assert_problem(
                client.post(url, json=_result(entry_id, outcome="maybe"), headers=key), 422
            )
            assert_problem(client.post(url, json=_result(entry_id, call_id="=x"), headers=key), 422)
            naive = _result(entry_id, started_at="2025-03-03T10:30:00")
            assert_problem(client.post(url, json=naive, headers=key), 422)
            future = _result(entry_id, started_at="2999-01-01T10:00:00+08:00")
            assert_problem(client.post(url, json=future, headers=key), 422)
            letter = _result(entry_id, outcome="message_delivered")
            assert_problem(client.post(url, json=letter, headers=key), 422)

    def test_a_call_the_gate_would_refuse_is_recorded_as_a_violation(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        _list, views = _build(session, institution, portfolio.agent)
        key = api_key(session, institution, "calls:report")
        late = _result(views[0].entry.id, call_id="late-1", started_at="2025-03-03T22:30:00+08:00")
        with client_for(session) as client:
            response = client.post("/api/v1/dialer/results", json=late, headers=key)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["violation"] is True
        assert "CN-HRS" in body["rule_ids"]
        attempt = session.get(ContactAttempt, body["attempt_id"])
        assert attempt is not None
        assert (attempt.status, attempt.outcome) == (AttemptStatus.MADE, "right_party")
        violation = session.scalars(select(ComplianceViolation)).one()
        assert (violation.source, violation.source_id, violation.rule_id) == (
            "outreach.call",
            "late-1",
            "CN-HRS",
        )

    def test_the_fourth_effective_call_of_a_day_is_a_violation(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        _list, views = _build(session, institution, portfolio.agent)
        principal = institution_scope(institution.id, actor="dialer")
        results = [
            service.report_call(
                session,
                principal=principal,
                institution=institution,
                given=ReportInput(
                    external_id=f"c{hour}",
                    entry_id=views[0].entry.id,
                    happened_at=datetime(2025, 3, 3, hour, tzinfo=SHANGHAI),
                    outcome="right_party",
                ),
            )[0]
            for hour in (9, 11, 14, 16)
        ]
        assert [report.violation for report in results] == [False, False, False, True]
        assert results[-1].rule_ids == ["CN-FREQ-V"]

    def test_not_made_touches_no_gate(self, session: Session) -> None:
        institution = make_institution(session)
        portfolio = owned_cases(session, institution, count=1)
        _list, views = _build(session, institution, portfolio.agent)
        report, created = service.report_call(
            session,
            principal=institution_scope(institution.id),
            institution=institution,
            given=ReportInput(
                external_id="n1",
                entry_id=views[0].entry.id,
                happened_at=MORNING,
                outcome="not_made",
            ),
        )
        assert created
        assert report.decision_id is None
        assert report.attempt_id is None
