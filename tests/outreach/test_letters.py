"""Letters: queued through the gate as outbox messages, printed as one PDF a day with the
elements the pack requires, in Chinese glyphs that render."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
import pytest
from reportlab.pdfbase import pdfmetrics
from sqlalchemy.orm import Session

from recoup.compliance.templates.review import review
from recoup.identity.principal import principal_for_user
from recoup.identity.scoping import institution_scope
from recoup.kit.clock import utcnow
from recoup.kit.errors import ValidationFailed
from recoup.models import Institution
from recoup.outbox.dispatch import dispatch
from recoup.outreach.letters import pdf, rules, service
from tests.factories import make_account, make_contact_point, make_debtor, make_institution
from tests.identity.helpers import assert_problem, bearer, client_for, make_user, signed_in
from tests.outbox.helpers import approved_template, set_channels

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2025, 3, 3)
NOW = datetime(2025, 3, 3, 9, 30, tzinfo=SHANGHAI)
LETTER = """尊敬的{{ debtor_name }}：
您在本机构的借款（合同编号 {{ account_number }}）已逾期 {{ days_past_due }} 天，截至本函出具之日尚欠本息合计 {{ balance }} 元。
根据《借款合同》约定及《中华人民共和国民法典》相关规定，您负有按期还款的义务；同时您享有了解债务明细、对债务提出异议等合法权利。
您可通过本机构手机银行或客服热线查询账户明细。还款方式：向本机构还款账户转账，或通过手机银行还款。
如对本函所述债务有异议，请自收到本函之日起十五日内通过客服热线提出，我们将在核实后答复。
客服电话：400-000-0000（工作日 9:00-18:00）。"""


def _page_text(document: bytes) -> list[str]:
    pages = pdfium.PdfDocument(document)
    return [pages[i].get_textpage().get_text_range() for i in range(len(pages))]


class TestWrap:
    @staticmethod
    def _width(text: str) -> float:
        return float(sum(2 if rules._is_wide(c) else 1 for c in text))

    def test_cjk_breaks_anywhere_but_not_before_closing_punctuation(self) -> None:
        lines = rules.wrap("尊敬的张伟先生，您好。", width=self._width, max_width=8)
        assert all(self._width(line) <= 10 for line in lines)
        assert "".join(lines) == "尊敬的张伟先生，您好。"
        assert not any(line.startswith(("，", "。")) for line in lines)

    def test_latin_breaks_at_spaces_and_long_words_by_character(self) -> None:
        lines = rules.wrap(
            "pay at https://example.com/a-very-long-path now", width=len, max_width=12
        )
        assert lines[0] == "pay at"
        assert all(len(line) <= 12 for line in lines)
        assert "".join(lines).replace(" ", "") == "payathttps://example.com/a-very-long-pathnow"

    def test_paragraphs_stay(self) -> None:
        assert rules.wrap("一\n\n二", width=len, max_width=10) == ["一", "", "二"]


class TestFont:
    def test_a_missing_font_is_refused_clearly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(pdf.FONT_ENV, "/nowhere/font.ttf")
        with pytest.raises(pdf.LetterFontMissing, match="fonts-wqy-microhei"):
            pdf.font_path()


def _debtor_with_address(session: Session, institution: Institution, **extra: object):  # type: ignore[no-untyped-def]
    debtor = make_debtor(session, institution, **extra)  # type: ignore[arg-type]
    make_contact_point(session, debtor, kind="address", value="上海市浦东新区世纪大道100号 200120")
    account = make_account(session, debtor)
    return debtor, account


def _released(session: Session, institution: Institution, count: int = 2) -> list[int]:
    template = approved_template(session, institution, channel="letter", body=LETTER)
    principal = institution_scope(institution.id, actor="manager")
    ids = []
    for index in range(count):
        debtor, account = _debtor_with_address(
            session, institution, name=["张伟", "欧阳娜娜"][index % 2]
        )
        queued = service.queue_letter(
            session,
            principal=principal,
            institution=institution,
            debtor_id=debtor.id,
            template_id=template.id,
            account_id=account.id,
            day=DAY,
            now=NOW,
        )
        assert queued.message is not None
        ids.append(queued.message.id)
    report = dispatch(session, now=NOW, institution_id=institution.id)
    assert sum(report.counts.get(s, 0) for s in service.RELEASED) == count, report
    return ids


class TestPrintBatch:
    def test_one_pdf_a_day_with_the_required_elements_and_a_manifest(
        self, session: Session
    ) -> None:
        institution = make_institution(session)
        ids = _released(session, institution)
        batch = service.print_batch(
            session,
            principal=institution_scope(institution.id, actor="manager"),
            institution=institution,
            day=DAY,
        )
        assert batch.letters == 2
        texts = _page_text(batch.pdf)
        assert len(texts) == batch.pages >= 2
        first = texts[0]
        for element in (
            "张伟",
            "催收通知函",
            "2025年3月3日",
            "根据《借款合同》",
            "异议",
            "客服电话",
            "还款方式",
            "上海市浦东新区世纪大道100号",
        ):
            assert element in first, element
        # The printed letter passes the same review its template passed (CN-DISC complete).
        found = review(first, locale="zh-CN", audience="debtor", channel="letter")
        assert [f.rule_id for f in found.findings if f.category == "missing_element"] == []
        rows = list(csv.reader(io.StringIO(batch.manifest)))
        assert rows[0] == list(rules.MANIFEST_COLUMNS)
        assert [int(row[1]) for row in rows[1:]] == ids
        assert [int(row[2]) for row in rows[1:]] == [1, 1 + int(rows[1][3])]
        assert "张伟" not in batch.manifest  # no personal data in the manifest

    def test_chinese_glyphs_render(self, session: Session) -> None:
        institution = make_institution(session)
        _released(session, institution, count=1)
        batch = service.print_batch(
            session,
            principal=institution_scope(institution.id),
            institution=institution,
            day=DAY,
        )
        font = pdfmetrics.getFont(pdf.FONT_NAME)
        letter_text = "催收通知函尊敬的张伟异议客服电话还款方式根据借款合同"
        missing = [c for c in letter_text if font.face.charToGlyph.get(ord(c), 0) == 0]
        assert missing == []  # every character has a real glyph (no empty boxes)
        page = pdfium.PdfDocument(batch.pdf)[0]
        image = page.render(scale=1.5).to_pil().convert("L")
        width, height = image.size
        ink = sum(image.histogram()[:128]) / (width * height)
        assert 0.005 < ink < 0.2  # text on the page, not a blank or a black page
        # The title line, drawn in Chinese only, holds ink where the title is.
        title = image.crop(
            (int(width * 0.3), int(height * 0.2), int(width * 0.7), int(height * 0.3))
        )
        assert sum(title.histogram()[:128]) > 200
        image.save("/tmp/field-letter-page1.png")

    def test_a_letter_the_gate_refuses_is_not_queued(self, session: Session) -> None:
        institution = make_institution(session)
        template = approved_template(session, institution, channel="letter", body=LETTER)
        debtor, account = _debtor_with_address(session, institution)
        debtor.cease_contact = True
        session.flush()
        queued = service.queue_letter(
            session,
            principal=institution_scope(institution.id),
            institution=institution,
            debtor_id=debtor.id,
            template_id=template.id,
            account_id=account.id,
            day=DAY,
            now=NOW,
        )
        assert queued.message is None
        assert "CN-STOP" in queued.reasons

    def test_the_same_letter_asked_again_later_in_its_day_is_the_same_letter(
        self, session: Session
    ) -> None:
        """Once the day's letter time has passed a letter is planned for now; asked for again
        an hour later it is still the one letter of that debtor, template, account and day."""
        institution = make_institution(session)
        template = approved_template(session, institution, channel="letter", body=LETTER)
        debtor, account = _debtor_with_address(session, institution)
        asked = [
            service.queue_letter(
                session,
                principal=institution_scope(institution.id),
                institution=institution,
                debtor_id=debtor.id,
                template_id=template.id,
                account_id=account.id,
                day=DAY,
                now=now,
            )
            for now in (NOW, NOW + timedelta(hours=1), NOW + timedelta(days=400))
        ]
        assert [queued.duplicate for queued in asked] == [False, True, True]
        assert asked[0].message is not None
        assert {queued.message.id for queued in asked if queued.message} == {asked[0].message.id}

    def test_a_letter_queued_in_the_evening_prints_that_evening(self, session: Session) -> None:
        """The institution's quiet hours hold texts and emails, not letters: a letter reaches
        the debtor by post, so one queued at 20:30 is released and printed at once."""
        institution = make_institution(session)
        set_channels(session, institution, quiet_start="20:00", quiet_end="09:00")
        template = approved_template(session, institution, channel="letter", body=LETTER)
        debtor, account = _debtor_with_address(session, institution)
        evening = datetime(2025, 3, 3, 20, 30, tzinfo=SHANGHAI)
        queued = service.queue_letter(
            session,
            principal=institution_scope(institution.id),
            institution=institution,
            debtor_id=debtor.id,
            template_id=template.id,
            account_id=account.id,
            day=DAY,
            now=evening,
        )
        assert queued.message is not None
        assert queued.message.scheduled_at.astimezone(SHANGHAI).date() == DAY
        report = dispatch(
            session, now=evening + timedelta(minutes=1), institution_id=institution.id
        )
        assert sum(report.counts.get(s, 0) for s in service.RELEASED) == 1, report

    def test_an_empty_day_is_an_empty_file(self, session: Session) -> None:
        institution = make_institution(session)
        batch = service.print_batch(
            session, principal=institution_scope(institution.id), institution=institution, day=DAY
        )
        assert batch.letters == 0
        assert batch.pdf.startswith(b"%PDF")


def test_a_letter_named_by_reference_is_about_the_largest_open_account(
    session: Session,
) -> None:
    """The letters page takes the debtor's reference; the letter needs an account's figures."""
    institution = make_institution(session)
    template = approved_template(session, institution, channel="letter", body=LETTER)
    debtor, _small = _debtor_with_address(session, institution, name="张伟")
    large = make_account(session, debtor, principal=5_000_000)
    principal = institution_scope(institution.id, actor="manager")
    found = service.debtor_for_reference(
        session, principal=principal, institution=institution, reference=f" {debtor.external_id} "
    )
    assert found == debtor.id
    assert (
        service.debtor_for_reference(
            session, principal=principal, institution=institution, reference=str(debtor.id)
        )
        == debtor.id
    )
    with pytest.raises(ValidationFailed, match="no debtor 'NOBODY' here"):
        service.debtor_for_reference(
            session, principal=principal, institution=institution, reference="NOBODY"
        )
    queued = service.queue_letter(
        session, principal=principal, institution=institution, debtor_id=found,
        template_id=template.id, day=DAY, now=NOW,
    )  # fmt: skip
    assert queued.message is not None
    assert queued.message.account_id == large.id
    assert large.external_id in queued.message.body
    assert "50650.00" in queued.message.body  # 50,000.00 principal + interest, fees, penalty


def test_the_api(session: Session) -> None:
    institution = make_institution(session)
    template = approved_template(
        session, institution, channel="letter", body=LETTER, today=utcnow().date()
    )
    debtor, account = _debtor_with_address(session, institution)
    manager = make_user(session, institution, role="manager")
    agent = make_user(session, institution, role="agent")
    other = make_debtor(session, make_institution(session))
    with client_for(session) as client:
        body = {
            "debtor_id": debtor.id,
            "template_id": template.id,
            "account_id": account.id,
            "day": "2030-03-04",
        }
        queued = client.post("/api/v1/letters", json=body, headers=bearer(manager))
        assert queued.status_code == 201, queued.text
        assert queued.json()["queued"] is True
        again = client.post("/api/v1/letters", json=body, headers=bearer(manager))
        assert again.json()["duplicate"] is True
        stranger = {**body, "debtor_id": other.id}
        assert_problem(client.post("/api/v1/letters", json=stranger, headers=bearer(manager)), 404)
        printed = client.get("/api/v1/letters/batch.pdf?day=2030-03-04", headers=bearer(manager))
        assert printed.status_code == 200
        assert printed.headers["content-type"] == "application/pdf"
        assert_problem(
            client.get("/api/v1/letters/batch.pdf?day=2030-03-04", headers=bearer(agent)), 403
        )
        manifest = client.get(
            "/api/v1/letters/manifest.csv?day=2030-03-04", headers=bearer(manager)
        )
        assert manifest.text.startswith("sequence,message_id")
    assert principal_for_user(agent).is_agent


def test_the_page_lists_the_day_and_prints_it(session: Session) -> None:
    institution = make_institution(session)
    _released(session, institution, count=1)
    manager = make_user(session, institution, role="manager")
    agent = make_user(session, institution, role="agent")
    with client_for(session) as client:
        csrf = signed_in(client, manager)
        page = client.get("/letters?day=2025-03-03", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200
        assert "2025年3月3日 放入打印批次" in page.text
        assert "张*" in page.text  # names masked on the page
        printed = client.post("/letters/batch.pdf", data={"day": "2025-03-03"}, headers=csrf)
        assert printed.status_code == 200
        assert printed.content.startswith(b"%PDF")
        csrf = signed_in(client, agent)
        assert "print-pdf" not in client.get("/letters?day=2025-03-03").text
        refused = client.post("/letters/batch.pdf", data={"day": "2025-03-03"}, headers=csrf)
        assert refused.status_code == 403


US_NOTICE = """Dear {{ debtor_name }},
{{ collector_name }} is a debt collector. We are trying to collect a debt that you owe to {{ creditor_name }}. We will use any information you give us to help collect the debt.
Our information shows: you had an account with {{ creditor_name }} with account number {{ account_number }}.
As of {{ itemization_date }}, you owed: ${{ principal }}
Between {{ itemization_date }} and today:
You were charged this amount in interest: + ${{ interest }}
You were charged this amount in fees: + ${{ fees }}
Total amount of the debt now: ${{ balance }}
How can you dispute the debt?
Call or write to us by {{ validation_end_date }} to dispute all or part of the debt. If you do not, we will assume that our information is correct.
If you write to us by {{ validation_end_date }}, we must stop collection on any amount you dispute until we send you information that shows you owe the debt.
Write to us at {{ collector_address }} or call us at {{ collector_phone }}."""
NEW_YORK = ZoneInfo("America/New_York")


class TestUsValidationNotice:
    """A US institution's validation notice (Reg F, 12 CFR 1006.34) printed from an approved
    template: the itemization date, the amounts, the dispute deadline 30 days after the
    assumed receipt, how to dispute and the creditor's name are on the page."""

    @staticmethod
    def _institution(session: Session) -> Institution:
        from recoup.institutions import service as institutions_service

        institution = make_institution(
            session, jurisdiction="US", timezone="America/New_York", currency="USD"
        )
        institution.name = "Acme Lending"
        institutions_service.update_settings(
            session,
            institution=institution,
            changes={
                "outreach": {
                    "letter_sender_name": "Acme Recoveries",
                    "letter_sender_address": "PO Box 100, Albany, NY 12201",
                    "letter_sender_phone": "1-800-555-0100",
                }
            },
            actor="test",
        )
        return institution

    @staticmethod
    def _template(session: Session, institution: Institution, body: str) -> int:
        from recoup.compliance.templates import service as templates_service

        author = make_user(session, institution, role="manager")
        reviewer = make_user(session, institution, role="compliance_officer")
        template = templates_service.create_template(
            session, institution_id=institution.id, name="Validation notice", channel="letter",
            locale="en-US", audience="debtor", body=body, author=author.username,
            author_id=author.id, kind="validation_notice",
        )  # fmt: skip
        templates_service.submit_template(
            session, institution_id=institution.id, template_id=template.id,
            actor=author.username, actor_id=author.id,
        )  # fmt: skip
        templates_service.decide_template(
            session, institution_id=institution.id, template_id=template.id, approve=True,
            actor=reviewer.username, actor_id=reviewer.id, today=DAY,
        )  # fmt: skip
        return template.id

    def test_the_notice_prints_with_every_element(self, session: Session) -> None:
        institution = self._institution(session)
        template_id = self._template(session, institution, US_NOTICE)
        debtor = make_debtor(
            session, institution, name="John Smith", timezone="America/New_York",
            national_id=None,
        )  # fmt: skip
        make_contact_point(
            session, debtor, kind="address", value="12 Main Street, Springfield, IL 62701"
        )
        account = make_account(
            session, debtor, principal=123_456, interest=2_345, fees=1_500, penalty=500
        )
        account.currency = "USD"
        account.charged_off_on = date(2025, 1, 31)
        session.flush()
        now = datetime(2025, 3, 3, 9, 30, tzinfo=NEW_YORK)  # a Monday
        queued = service.queue_letter(
            session, principal=institution_scope(institution.id, actor="manager"),
            institution=institution, debtor_id=debtor.id, template_id=template_id,
            account_id=account.id, day=DAY, now=now,
        )  # fmt: skip
        assert queued.message is not None, queued.reasons
        dispatch(session, now=now, institution_id=institution.id)
        batch = service.print_batch(
            session, principal=institution_scope(institution.id), institution=institution, day=DAY
        )
        assert batch.letters == 1
        # Text taken back out of the PDF with PDFium (not ReportLab, which drew it).
        text = " ".join(" ".join(page.split()) for page in _page_text(batch.pdf))
        for element in (
            "Validation Notice",
            "March 3, 2025",  # the letter's date
            "Dear John Smith",
            "you owe to Acme Lending",  # the creditor
            "Acme Recoveries is a debt collector",
            "As of January 31, 2025, you owed: $1234.56",  # the itemization date and amount
            "interest: + $23.45",
            "fees: + $20.00",
            "Total amount of the debt now: $1278.01",
            # Sent Monday 3 March: received after five working days (Monday 10 March), then
            # 30 days to dispute.
            "Call or write to us by April 9, 2025 to dispute all or part of the debt",
            "Write to us at PO Box 100, Albany, NY 12201 or call us at 1-800-555-0100",
            "12 Main Street, Springfield, IL 62701",
        ):
            assert element in text, element
        found = review(
            text, locale="en-US", audience="debtor", channel="letter", kind="validation_notice"
        )
        assert [f.text for f in found.findings if f.category == "missing_element"] == []

    def test_a_notice_without_the_elements_is_refused_naming_them(self, session: Session) -> None:
        institution = self._institution(session)
        thin = "Dear {{ debtor_name }}, you owe ${{ balance }}. Please pay us soon."
        with pytest.raises(Exception, match="review findings") as refused:
            self._template(session, institution, thin)
        message = str(refused.value)
        for named in (
            "US-VAL: missing the creditor's name",
            "US-VAL: missing the itemization date",
            "{{ itemization_date }}",
            "US-VAL: missing the dispute rights and end date",
            "US-VAL: missing the debt collector's contact details",
        ):
            assert named in message, named
        # The itemization date written out counts as well as its placeholder.
        written = US_NOTICE.replace("{{ itemization_date }}", "January 31, 2025")
        assert self._template(session, institution, written)
