"""In headless Chromium, on a demo institution: a manager sends an approved SMS campaign to a
segment, the dispatcher sends it through the demo's sandbox provider, the sandbox's delivery
receipts arrive, and the outbox page shows the statuses change — delivered and failed."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from recoup.db import unit_of_work
from recoup.demo.service import seed_demo
from recoup.identity import service as identity
from recoup.kit.clock import utcnow
from recoup.models import Institution
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.identity import User
from recoup.models.outbox import OutboxMessage
from recoup.outbox import dispatch, service
from recoup.outbox.dispatch import Dispatcher
from tests.web.support import PASSWORD, LiveServer, database_session, log_in, run_campaign_jobs

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("RECOUP_SCREENSHOTS", "/tmp"))


@pytest.fixture(scope="module")
def demo(live_server: LiveServer) -> LiveServer:
    """The live server with the demo institutions seeded (the manager's password known)."""
    with database_session(live_server) as session:
        seed_demo(session, accounts=240, seed=11)
        manager = session.execute(select(User).where(User.username == "cf.manager")).scalar_one()
        manager.password_hash = identity.hash_password(PASSWORD)
        session.commit()
    return live_server


def _send_time() -> datetime:
    """When every queued message is due (one queued outside the hours waits for the morning)."""
    with unit_of_work() as session:
        due = session.scalar(
            select(func.max(OutboxMessage.scheduled_at)).where(OutboxMessage.status == "queued")
        )
    assert due is not None
    return max(due, utcnow()) + timedelta(minutes=1)


def test_a_demo_campaign_shows_deliveries_and_receipts_arriving(
    page: Page, demo: LiveServer
) -> None:
    live_server = demo
    log_in(page, live_server, "cf.manager", next_path="/outbox")
    page.click("[data-testid=new-campaign]")
    page.fill("[data-testid=campaign-name]", "演示 M1 短信提醒")
    page.select_option("[data-testid=campaign-template]", label="还款提醒短信 · 短信")
    page.check("[data-testid=campaign-bucket-M2]")  # a segment: the accounts 31–60 days late
    page.click("[data-testid=campaign-preview]")
    expect(page.locator("[data-testid=preview-reachable] .stat-value")).not_to_have_text("0")
    page.click("[data-testid=campaign-send]")
    expect(page.locator(".flash-list")).to_contain_text("批量发送已入队")
    row = page.locator("[data-testid=campaign-row]").first
    expect(row).to_contain_text("演示 M1 短信提醒")
    # The job (outbox.queue_campaign) has not run yet: the campaign shows its progress.
    expect(row.locator("[data-testid=campaign-progress]")).to_contain_text("排队中 0 /")
    expect(page.locator("[data-testid=outbox-refreshing]")).to_be_visible()
    assert run_campaign_jobs() == 1
    page.reload()
    expect(row.locator("[data-testid=campaign-progress]")).to_have_count(0)
    expect(page.locator("[data-testid=outbox-refreshing]")).to_be_visible()
    queued = int(page.locator("[data-testid=count-queued] .stat-value").inner_text())
    assert queued >= 10

    # The dispatcher (outbox.dispatch) sends through the sandbox: sent, no receipt yet.
    sent_at = _send_time()
    with unit_of_work() as session:
        report = dispatch.dispatch(session, now=sent_at, dispatcher=Dispatcher())
    assert report.counts == {"sent": queued}
    page.reload()
    expect(row.locator("[data-testid=campaign-sent]")).to_have_text(str(queued))
    expect(row.locator("[data-testid=campaign-delivered]")).to_have_text("0")

    # The sandbox's receipts (outbox.sandbox_receipts) arrive: delivered for most, failed for
    # some; the page, refreshing itself while messages are on their way, shows them.
    with unit_of_work() as session:
        final = service.deliver_sandbox_receipts(session, now=sent_at + timedelta(minutes=1))
    delivered = final["delivered"]
    failed = queued - delivered
    assert 0 < failed < delivered
    expect(row.locator("[data-testid=campaign-delivered]")).to_have_text(
        str(delivered), timeout=15_000
    )
    expect(row.locator("[data-testid=campaign-failed]")).to_have_text(str(failed))
    expect(row.locator("[data-testid=campaign-sent]")).to_have_text("0")
    expect(page.locator("[data-testid=count-delivered] .stat-value")).to_have_text(str(delivered))
    expect(page.locator("[data-testid=outbox-refreshing]")).to_have_count(0)
    statuses = page.locator("[data-testid=message-status]").all_inner_texts()
    assert set(statuses) <= {"已送达", "发送失败"}
    assert "已送达" in statuses
    page.screenshot(path=str(SHOTS / "outbox-sandbox-zh.png"), full_page=True)

    page.goto(f"{live_server.url}/outbox?status=failed")
    failures = page.locator("[data-testid=message-row]")
    expect(failures.first).to_contain_text("服务商回执显示未送达")
    expect(failures.filter(has_text=re.compile(r"undelivered \(3000[36]\)")).first).to_be_visible()
    expect(page.locator("[data-testid=receipts]").first).to_contain_text("未送达")
    with database_session(live_server) as session:
        demo = session.execute(
            select(Institution).where(Institution.code == "DEMO-CF")
        ).scalar_one()
        assert demo.settings["channels"]["sms_provider"] == "sandbox"


def test_a_demo_letter_prints_at_once(page: Page, demo: LiveServer) -> None:
    """The demo's approved collection letter: queued from the letters page by the debtor's
    reference, released by the dispatcher, printed as a PDF with the CN-DISC elements."""
    with database_session(demo) as session:
        institution = session.execute(
            select(Institution).where(Institution.code == "DEMO-CF")
        ).scalar_one()
        references = session.scalars(
            select(Debtor.external_id)
            .join(ContactPoint, ContactPoint.debtor_id == Debtor.id)
            .where(
                Debtor.institution_id == institution.id,
                Debtor.cease_contact.is_(False),
                ContactPoint.kind == "address",
                ContactPoint.relation == "self",
                ContactPoint.status == "valid",
            )
            .order_by(Debtor.id)
            .limit(8)
        ).all()
    log_in(page, demo, "cf.manager", next_path="/letters")
    expect(page.locator("[data-testid=letter-template]")).to_contain_text("催收通知函")
    for reference in references:
        page.fill("[data-testid=letter-debtor]", reference)
        page.click("[data-testid=letter-queue]")
        if "信函已排队" in page.locator(".flash-list").inner_text():
            break
    else:
        pytest.fail("no demo debtor with an address could be sent a letter")
    with unit_of_work() as session:
        dispatch.dispatch(session, now=_send_time(), dispatcher=Dispatcher())
    page.reload()
    expect(page.locator("[data-testid=letter-row]")).to_have_count(1)
    with page.expect_download() as download:
        page.click("[data-testid=print-pdf]")
    document = pdfium.PdfDocument(Path(download.value.path()).read_bytes())
    pages = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    document.close()
    text = "".join(pages).replace("\r\n", "")  # lines wrapped on the page join again
    for element in (
        "催收通知函",
        "根据《借款合同》",
        "异议",
        "客服电话",
        "还款方式",
        "尚欠本息合计",
    ):
        assert element in text, element
    page.screenshot(path=str(SHOTS / "letters-demo-zh.png"), full_page=True)
