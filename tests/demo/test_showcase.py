"""A fresh demo shows every area with data: templates in each review state, approved call
scripts, gate decisions, violations, an import run with rejects and certificates — for each
demo institution."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.compliance.templates.review import review
from recoup.demo.service import seed_demo
from recoup.identity.scoping import institution_scope
from recoup.institutions.settings import settings_of
from recoup.models import Institution
from recoup.models.account import Account
from recoup.models.compliance import (
    Certification,
    ComplianceViolation,
    ContactDecision,
    MessageTemplate,
)
from recoup.models.contact import ContactAttempt
from recoup.models.debtor import ContactPoint
from recoup.models.ingest import ImportReject, ImportRun
from recoup.outbox.dispatch import dispatch
from recoup.outreach.letters import service as letters

AS_OF = date(2026, 11, 28)


def test_every_area_has_data_on_first_start(session: Session) -> None:
    result = seed_demo(session, accounts=300, seed=7, as_of=AS_OF)
    for institution in session.scalars(select(Institution)):
        where = {"institution_id": institution.id}
        templates = session.scalars(select(MessageTemplate).filter_by(**where)).all()
        assert {str(template.status) for template in templates} == {
            "draft",
            "submitted",
            "approved",
            "rejected",
        }, institution.code
        decisions = session.scalars(select(ContactDecision).filter_by(**where)).all()
        assert {decision.allowed for decision in decisions} == {True, False}
        attempts = session.scalars(select(ContactAttempt).filter_by(**where)).all()
        assert {str(attempt.status) for attempt in attempts} >= {"planned", "made"}
        assert {attempt.outcome for attempt in attempts} >= {"promise_made", "no_answer"}
        assert any(attempt.direction == "inbound" for attempt in attempts)
        scripts = [template for template in templates if template.kind == "script"]
        assert len(scripts) == 18
        assert {str(script.status) for script in scripts} == {"approved"}
        assert any(attempt.script_id is not None for attempt in attempts)
        violations = session.scalars(select(ComplianceViolation).filter_by(**where)).all()
        assert {str(violation.status) for violation in violations} >= {"open", "confirmed"}
        runs = session.scalars(select(ImportRun).filter_by(**where)).all()
        assert len(runs) == 1
        assert runs[0].rejected > 0
        assert str(runs[0].status) == "completed"
        assert session.scalars(select(ImportReject).filter_by(run_id=runs[0].id)).first()
        assert session.scalars(select(Certification).filter_by(**where)).first()
    for outcome in result.institutions:
        assert outcome.counts["templates"] == 7
        assert outcome.counts["scripts"] == 18
        assert outcome.counts["contacts"] > 0
        assert outcome.counts["import_rejects"] > 0


def test_the_demo_prints_a_letter_and_sends_through_the_sandbox(session: Session) -> None:
    """An approved CN-DISC letter template and an approved email template are there on first
    start; a letter queued from it prints at once; texts and emails go to the sandbox."""
    seed_demo(session, accounts=300, seed=7, as_of=AS_OF)
    institution = session.execute(
        select(Institution).where(Institution.code == "DEMO-CF")
    ).scalar_one()
    channels = settings_of(institution).channels
    assert (channels.sms_provider, channels.email_provider) == ("sandbox", "sandbox")
    approved = {
        str(t.channel): t
        for t in session.scalars(
            select(MessageTemplate).filter_by(institution_id=institution.id, status="approved")
        )
        if t.kind != "script"
    }
    assert {"sms", "email", "letter"} <= set(approved)
    letter = approved["letter"]
    assert review(letter.body, locale="zh-CN", audience="debtor", channel="letter").passed
    principal = institution_scope(institution.id, actor="cf.agent1")
    now = datetime(2026, 11, 28, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    addressed = session.scalars(
        select(ContactPoint).filter_by(
            institution_id=institution.id, kind="address", relation="self", status="valid"
        )
    ).all()
    queued = None
    for point in addressed:
        account = session.scalars(select(Account).filter_by(debtor_id=point.debtor_id)).first()
        queued = letters.queue_letter(
            session, principal=principal, institution=institution, debtor_id=point.debtor_id,
            template_id=letter.id, account_id=account.id if account else None, day=AS_OF,
            now=now,
        )  # fmt: skip
        if queued.message is not None:
            break
    assert queued is not None
    assert queued.message is not None
    dispatch(session, now=now + timedelta(minutes=1), institution_id=institution.id)
    batch = letters.print_batch(session, principal=principal, institution=institution, day=AS_OF)
    assert batch.letters == 1
    document = pdfium.PdfDocument(batch.pdf)
    text = "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    for element in (
        "催收通知函",
        "2026年11月28日",
        "根据《借款合同》",
        "异议",
        "客服电话",
        "还款方式",
    ):
        assert element in text, element
    found = review(text, locale="zh-CN", audience="debtor", channel="letter")
    assert [f.rule_id for f in found.findings if f.category == "missing_element"] == []
