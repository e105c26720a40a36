"""In headless Chromium: a manager sends an approved SMS campaign to a segment, sees a dead
letter retried, and watches the message go out and its delivery receipt arrive."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from recoup import config
from recoup.db import unit_of_work
from recoup.models import Institution
from recoup.models.outbox import OutboxCampaign, OutboxMessage
from recoup.outbox import dispatch, rules
from recoup.outbox.dispatch import Dispatcher
from tests.outbox.helpers import approved_template, set_channels
from tests.outbox.servers import SmsProvider, sms_server
from tests.web.support import LiveServer, database_session, log_in, run_campaign_jobs

pytestmark = pytest.mark.browser
SECRET = "browser-secret"
SHOTS = Path(os.environ.get("RECOUP_SCREENSHOTS", "/tmp"))


@pytest.fixture
def gateway(live_server: LiveServer) -> Iterator[tuple[str, SmsProvider]]:
    """A local SMS gateway the live server's institution sends through."""
    with sms_server() as (url, provider):
        with database_session(live_server) as session:
            bank = session.execute(
                select(Institution).where(Institution.code == "WEBBANK")
            ).scalar_one()
            set_channels(
                session, bank, quiet_start=None, quiet_end=None, sms_provider="gateway",
                sms_gateway_url=url, max_attempts=1,
            )  # fmt: skip
            approved_template(session, bank)
            session.commit()
        yield url, provider


def _dispatch() -> int:
    """Run the dispatcher when the messages are due (a message outside the hours now is
    rescheduled to the next allowed time, so run again then); return how many were sent."""
    sent = 0
    for _ in range(3):
        with unit_of_work() as session:
            due = session.scalar(
                select(func.max(OutboxMessage.scheduled_at)).where(OutboxMessage.status == "queued")
            )
            if due is None:
                break
            report = dispatch.dispatch(
                session, now=due + timedelta(minutes=1), dispatcher=Dispatcher()
            )
        sent += report.sent
        if not report.held:
            break
    return sent


def test_a_manager_sends_a_campaign_and_watches_it_delivered(
    page: Page,
    live_server: LiveServer,
    gateway: tuple[str, SmsProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _url, provider = gateway
    log_in(page, live_server, "manager", next_path="/outbox")
    expect(page.locator("h1")).to_have_text("消息发送")
    expect(page.locator("[data-testid=empty-state]")).to_be_visible()

    page.click("[data-testid=new-campaign]")
    page.fill("[data-testid=campaign-name]", "三月 M2 提醒")
    page.select_option("[data-testid=campaign-template]", label="reminder · 短信")
    page.check("[data-testid=campaign-bucket-M2]")
    page.click("[data-testid=campaign-preview]")
    expect(page.locator("[data-testid=preview-accounts] .stat-value")).to_have_text("5")
    expect(page.locator("[data-testid=preview-reachable] .stat-value")).to_have_text("1")
    page.screenshot(path=str(SHOTS / "outbox-campaign-zh.png"), full_page=True)

    page.click("[data-testid=campaign-send]")
    expect(page.locator(".flash-list")).to_contain_text(
        "批量发送已入队：正在后台为 5 个账户生成消息"
    )
    expect(page.locator("[data-testid=campaign-row]")).to_contain_text("三月 M2 提醒")
    expect(page.locator("[data-testid=campaign-progress]")).to_have_text("排队中 0 / 5")
    assert run_campaign_jobs() == 1
    page.reload()
    expect(page.locator("[data-testid=campaign-queued]")).to_have_text("1")
    expect(page.locator("[data-testid=message-status]")).to_have_text("排队中")

    # The gateway is down: one try (max_attempts=1) and the message is a dead letter.
    provider.fail_next = 1
    _dispatch()
    page.goto(f"{live_server.url}/outbox?status=dead")
    expect(page.locator("[data-testid=message-status]")).to_have_text("重试用尽")
    expect(page.locator("[data-testid=message-row]")).to_contain_text("HTTP 503")
    page.click("[data-testid=retry]")
    expect(page.locator(".flash-list")).to_contain_text("消息已重新入队")

    assert _dispatch() == 1
    assert provider.total == 1
    page.goto(f"{live_server.url}/outbox")
    expect(page.locator("[data-testid=message-status]")).to_have_text("已发送")

    # The gateway's signed delivery receipt arrives at the server.
    monkeypatch.setenv("RECOUP_SMS_CALLBACK_SECRET", SECRET)
    config.get_settings.cache_clear()
    body = json.dumps({"id": "G1", "status": "delivered"}).encode()
    answer = httpx.post(
        f"{live_server.url}/api/v1/outbox/hooks/WEBBANK/gateway/status",
        content=body,
        headers={"X-Recoup-Signature": rules.gateway_signature(SECRET, body)},
    )
    assert answer.status_code == 204
    page.reload()
    expect(page.locator("[data-testid=message-status]")).to_have_text("已送达")
    expect(page.locator("[data-testid=receipts]")).to_contain_text("已送达")
    page.screenshot(path=str(SHOTS / "outbox-zh.png"), full_page=True)
    page.goto(f"{live_server.url}/lang?locale=en&next=/outbox")
    page.goto(f"{live_server.url}/outbox")
    page.screenshot(path=str(SHOTS / "outbox-en.png"), full_page=True)


def test_a_channel_and_a_template_of_another_kind_cannot_go_together(
    page: Page, live_server: LiveServer
) -> None:
    with database_session(live_server) as session:
        bank = session.execute(
            select(Institution).where(Institution.code == "WEBBANK")
        ).scalar_one()
        set_channels(session, bank, quiet_start=None, quiet_end=None)
        approved_template(session, bank)
        approved_template(session, bank, channel="email")
        session.commit()
        before = session.scalar(select(func.count()).select_from(OutboxCampaign))
    log_in(page, live_server, "manager", next_path="/outbox")
    page.goto(f"{live_server.url}/outbox/campaigns/new")
    template = page.locator("[data-testid=campaign-template]")
    sms = template.locator("option[data-channel=sms]").first
    email = template.locator("option[data-channel=email]").first
    expect(email).to_be_hidden()
    page.select_option("[data-testid=campaign-template]", sms.get_attribute("value"))
    # Switching the channel to email drops the SMS template and offers the email ones.
    page.select_option("[data-testid=campaign-channel]", "email")
    expect(template).to_have_value("")
    expect(email).to_be_enabled()
    expect(sms).to_be_disabled()

    # A form put together by hand (an SMS channel with an email template) is refused.
    page.select_option("[data-testid=campaign-template]", email.get_attribute("value"))
    page.check("[data-testid=campaign-bucket-M2]")
    page.click("[data-testid=campaign-preview]")
    expect(page.locator("[data-testid=preview]")).to_be_visible()
    page.evaluate(
        "document.querySelector('[data-testid=send-form] input[name=channel]').value = 'sms';"
        "document.querySelector('[data-testid=campaign-send]').disabled = false"
    )
    page.click("[data-testid=campaign-send]")
    expect(page.locator(".flash-list")).to_contain_text("是电子邮件模板，不是短信")
    with database_session(live_server) as session:
        assert session.scalar(select(func.count()).select_from(OutboxCampaign)) == before


def test_agents_do_not_see_the_outbox(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "agent")
    expect(page.locator("nav.app-nav")).not_to_contain_text("消息发送")
