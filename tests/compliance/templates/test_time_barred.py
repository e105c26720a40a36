"""US-SOL: no threat of suit in a text rendered or reviewed for a time-barred account."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from recoup.compliance.templates import service as templates_service
from recoup.compliance.templates.review import review, time_barred_threats, with_time_barred_check
from recoup.kit.errors import NotFound, PermissionDenied
from recoup.models import Institution, User
from recoup.models.compliance import MessageTemplate
from tests.factories import make_account, make_debtor, make_institution
from tests.identity.helpers import make_user

TODAY = date(2025, 3, 3)
THREAT_EN = (
    "Hello {{ name }}, if the balance stays unpaid we may take legal action to collect it. "
    "Reply STOP to opt out."
)
THREAT_ZH = "{{ debtor_name }}您好，如仍未还款，我司将依法提起诉讼。"
CLEAN_EN = "Hello {{ name }}, your balance is due. Reply STOP to opt out."


class TestTimeBarredThreats:
    @pytest.mark.parametrize(
        ("text", "found"),
        [
            ("We will sue you next week.", ["sue"]),
            ("A LAWSUIT will follow.", ["LAWSUIT"]),
            ("we may take legal\nproceedings", ["legal\nproceedings"]),
            ("You will receive a court summons.", ["court", "summons"]),
            ("我司将向法院起诉", ["法院", "起诉"]),
            ("我司將向法院起訴", ["法院", "起訴"]),
            ("将寄送法院传票", ["法院传票"]),
            ("我们将提起诉讼", ["提起诉讼"]),
            ("起 诉", ["起 诉"]),
        ],
    )
    def test_lawsuit_language_is_found_with_its_span(self, text: str, found: list[str]) -> None:
        findings = time_barred_threats(text)
        assert [finding.text for finding in findings] == found
        assert {finding.rule_id for finding in findings} == {"US-SOL"}
        for finding in findings:
            assert text[finding.start : finding.end] == finding.text

    @pytest.mark.parametrize(
        "text",
        [
            "Please pursue the issue with our support team.",
            "本债务已过诉讼时效，请知悉。",
            "Your balance is $120.00. Reply STOP to opt out.",
            "您的账单已到期，请及时还款。",
        ],
    )
    def test_ordinary_text_is_not_a_threat(self, text: str) -> None:
        assert time_barred_threats(text) == ()

    def test_the_check_adds_findings_to_a_passing_review(self) -> None:
        passed = review(THREAT_EN, locale="en-US", audience="debtor", channel="sms")
        assert passed.passed
        checked = with_time_barred_check(passed, THREAT_EN)
        assert not checked.passed
        assert checked.rule_ids == ("US-SOL",)
        assert with_time_barred_check(passed, CLEAN_EN) is passed


def _approved(
    session: Session, institution: Institution, body: str, *, locale: str = "en-US"
) -> MessageTemplate:
    author = make_user(session, institution, role="compliance_officer")
    reviewer: User = make_user(session, institution, role="compliance_officer")
    template = templates_service.create_template(
        session,
        institution_id=institution.id,
        name="reminder",
        channel="sms",
        locale=locale,
        audience="debtor",
        body=body,
        author=author.username,
        author_id=author.id,
    )
    templates_service.submit_template(
        session, institution_id=institution.id, template_id=template.id,
        actor=author.username, actor_id=author.id,
    )  # fmt: skip
    return templates_service.decide_template(
        session, institution_id=institution.id, template_id=template.id, approve=True,
        actor=reviewer.username, actor_id=reviewer.id, today=TODAY,
    )  # fmt: skip


class TestRenderForAccount:
    def test_a_threat_is_refused_for_a_time_barred_account_only(self, session: Session) -> None:
        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        debtor = make_debtor(session, institution)
        barred = make_account(session, debtor)
        barred.time_barred_on = date(2024, 12, 31)
        current = make_account(session, debtor)
        current.time_barred_on = date(2027, 1, 1)
        unknown = make_account(session, debtor)
        template = _approved(session, institution, THREAT_EN)

        def render(account_id: int) -> str:
            return templates_service.render_approved_template(
                session,
                institution_id=institution.id,
                template_id=template.id,
                values={"name": "Ms Lee"},
                today=TODAY,
                account_id=account_id,
            )

        with pytest.raises(PermissionDenied, match="US-SOL") as refused:
            render(barred.id)
        assert refused.value.extra["rule_id"] == "US-SOL"
        assert [finding["text"] for finding in refused.value.extra["findings"]] == ["legal action"]
        assert "legal action" in render(current.id)
        assert "legal action" in render(unknown.id)

    def test_a_clean_template_renders_for_a_time_barred_account(self, session: Session) -> None:
        institution = make_institution(session)
        account = make_account(session, make_debtor(session, institution))
        account.time_barred_on = TODAY
        template = _approved(session, institution, CLEAN_EN)
        threat = _approved(session, institution, THREAT_ZH, locale="zh-CN")
        text = templates_service.render_approved_template(
            session, institution_id=institution.id, template_id=template.id,
            values={"name": "Ms Lee"}, today=TODAY, account_id=account.id,
        )  # fmt: skip
        assert text.startswith("Hello Ms Lee")
        with pytest.raises(PermissionDenied, match="诉讼"):
            templates_service.render_approved_template(
                session, institution_id=institution.id, template_id=threat.id,
                values={"debtor_name": "张先生"}, today=TODAY, account_id=account.id,
            )  # fmt: skip

    def test_another_tenants_account_is_not_found(self, session: Session) -> None:
        institution = make_institution(session)
        template = _approved(session, institution, CLEAN_EN)
        foreign = make_account(session, make_debtor(session, make_institution(session)))
        with pytest.raises(NotFound):
            templates_service.render_approved_template(
                session, institution_id=institution.id, template_id=template.id,
                values={"name": "x"}, today=TODAY, account_id=foreign.id,
            )  # fmt: skip

    def test_review_for_account(self, session: Session) -> None:
        institution = make_institution(session)
        debtor = make_debtor(session, institution)
        barred = make_account(session, debtor)
        barred.time_barred_on = date(2020, 1, 1)
        current = make_account(session, debtor)

        def findings(account_id: int) -> tuple[str, ...]:
            return templates_service.review_for_account(
                session, institution_id=institution.id, account_id=account_id, text=THREAT_EN,
                locale="en-US", audience="debtor", channel="sms", today=TODAY,
            ).rule_ids  # fmt: skip

        assert findings(barred.id) == ("US-SOL",)
        assert findings(current.id) == ()
