"""The compliance pages: marking findings in a text, certificate standing, the grant form."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.certifications.rules import certificate_standing
from recoup.compliance.views import Segment, highlight
from recoup.identity.dependencies import CSRF_HEADER
from recoup.models.compliance import Certification
from tests.factories import make_institution
from tests.identity.helpers import client_for, make_user, signed_in


class TestHighlight:
    def test_a_text_without_findings_is_one_plain_run(self) -> None:
        assert highlight("请按时还款", []) == [Segment("请按时还款", ())]

    def test_a_finding_is_cut_out_with_its_category_and_rule(self) -> None:
        text = "否则后果自负！"
        assert highlight(text, [(2, 6, "threat", "CN-LANG")]) == [
            Segment("否则", ()),
            Segment("后果自负", (("threat", "CN-LANG"),)),
            Segment("！", ()),
        ]

    def test_overlapping_findings_share_the_overlap(self) -> None:
        segments = highlight("abcdef", [(0, 4, "threat", "CN-LANG"), (2, 6, "insult", "CN-LANG")])
        assert [segment.text for segment in segments] == ["ab", "cd", "ef"]
        assert segments[1].marks == (("threat", "CN-LANG"), ("insult", "CN-LANG"))

    def test_empty_spans_mark_nothing_and_the_text_is_kept_whole(self) -> None:
        text = "您好，{{ debtor_name }}"
        segments = highlight(text, [(0, 0, "missing_element", "CN-DISC")])
        assert "".join(segment.text for segment in segments) == text
        assert all(not segment.marks for segment in segments)


class TestCertificateStanding:
    today = date(2026, 11, 28)

    def test_standings(self) -> None:
        assert certificate_standing(None, today=self.today) == "missing"
        assert certificate_standing(date(2026, 11, 27), today=self.today) == "expired"
        assert certificate_standing(date(2026, 11, 28), today=self.today) == "expiring"
        assert certificate_standing(date(2026, 12, 28), today=self.today) == "expiring"
        assert certificate_standing(date(2026, 12, 29), today=self.today) == "valid"


class TestGrantCertificationForm:
    form: ClassVar[dict[str, str]] = {
        "course": "合规培训",
        "issued_on": "2025-01-01",
        "expires_on": "2026-01-01",
    }

    def test_only_an_active_agent_of_the_institution_gets_a_certificate(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        agent = make_user(session, institution, role="agent")
        auditor = make_user(session, institution, role="auditor")
        stranger = make_user(session, make_institution(session), role="agent")
        with client_for(session) as client:
            headers = signed_in(client, officer)

            def grant(user_id: int) -> httpx.Response:
                return client.post(
                    "/compliance/certifications",
                    data={**self.form, "user_id": str(user_id)},
                    headers=headers,
                    follow_redirects=False,
                )

            not_agent, foreign, unknown, granted = (
                grant(auditor.id),
                grant(stranger.id),
                grant(2**62),
                grant(agent.id),
            )
            renew_foreign = client.get(
                f"/compliance/certifications?renew={stranger.id}", headers=headers
            )
        for refused, status in ((not_agent, 422), (foreign, 404), (unknown, 404)):
            assert refused.status_code == status
            assert "请选择一位催收员。" in refused.text
        assert renew_foreign.status_code == 404
        assert granted.status_code == 303, granted.text
        holders = session.scalars(select(Certification.user_id)).all()
        assert holders == [agent.id]


class TestFactsFormByJurisdiction:
    """The facts form shows the facts the institution's own rule pack reads."""

    US_ONLY = ("work_contact_forbidden", "validation_notice_sent_on", "initial_communication_on")

    def _form(
        self, session: Session, jurisdiction: str
    ) -> tuple[str, TestClient, int, dict[str, str]]:
        from tests.factories import make_account, make_debtor

        institution = make_institution(
            session,
            jurisdiction=jurisdiction,
            timezone="America/New_York" if jurisdiction == "US" else "Asia/Shanghai",
            currency="USD" if jurisdiction == "US" else "CNY",
        )
        debtor = make_debtor(session, institution)
        make_account(session, debtor)
        officer = make_user(session, institution, role="compliance_officer")
        context = client_for(session)
        client = context.__enter__()
        self._contexts.append(context)
        headers = signed_in(client, officer)
        page = client.get(f"/debtors/{debtor.id}/compliance-facts")
        assert page.status_code == 200, page.text
        return page.text, client, debtor.id, headers

    def setup_method(self) -> None:
        self._contexts: list[object] = []

    def teardown_method(self) -> None:
        for context in self._contexts:
            context.__exit__(None, None, None)  # type: ignore[attr-defined]

    def test_a_cn_debtor_sees_no_us_only_fields_and_keeps_them(self, session: Session) -> None:
        text, client, debtor_id, headers = self._form(session, "CN")
        for field in self.US_ONLY:
            assert field not in text
        assert 'name="cease_contact"' in text
        from recoup.models import Debtor

        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        debtor.work_contact_forbidden = True  # recorded through the API or an import
        session.commit()
        saved = client.post(
            f"/debtors/{debtor_id}/compliance-facts",
            data={"cease_contact": "on", "csrf_token": headers[CSRF_HEADER]},
            follow_redirects=False,
        )
        assert saved.status_code == 303
        session.refresh(debtor)
        assert debtor.cease_contact is True
        assert debtor.work_contact_forbidden is True  # not on the form, so not cleared

    def test_a_us_debtor_sees_the_us_fields(self, session: Session) -> None:
        text, *_rest = self._form(session, "US")
        for field in self.US_ONLY:
            assert field in text


class TestTextOnPages:
    """Forms apply the same text check as imports and the API (through the services)."""

    def test_a_template_name_with_a_direction_override_is_refused(self, session: Session) -> None:
        institution = make_institution(session)
        officer = make_user(session, institution, role="compliance_officer")
        with client_for(session) as client:
            headers = signed_in(client, officer)
            response = client.post(
                "/compliance/templates",
                data={
                    "name": "提醒\u202e短信",
                    "body": "您好，请按时还款。",
                    "csrf_token": headers[CSRF_HEADER],
                },
            )
        assert response.status_code == 422
        assert "U+202E" in response.text

    def test_a_template_body_keeps_its_lines_and_bullets(self, session: Session) -> None:
        from recoup.compliance.templates import service as templates_service

        institution = make_institution(session)
        body = "您好：\n- 欠款金额：{{ balance }}\n- 还款方式：手机银行"
        template = templates_service.create_template(
            session,
            institution_id=institution.id,
            name="提醒",
            channel="letter",
            locale="zh-CN",
            audience="debtor",
            body=body,
            author="test",
            author_id=None,
        )
        assert template.body == body
