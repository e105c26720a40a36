"""In headless Chromium: an admin subscribes an address (the secret shown once), sees a dead
letter and sends it again; the page in Chinese and in English."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.kit.clock import utcnow
from recoup.models import User
from recoup.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from tests.web.support import LiveServer, database_session, log_in, screenshot

pytestmark = pytest.mark.browser


def _dead_letter(server: LiveServer) -> int:
    with database_session(server) as session:
        admin = session.execute(select(User).where(User.username == "admin")).scalar_one()
        subscription = session.execute(select(WebhookSubscription)).scalars().first()
        assert subscription is not None
        assert admin.institution_id is not None
        event = WebhookEvent(
            institution_id=admin.institution_id,
            event_id="5b0e4a52-2f6e-4d6b-a0a4-3f7f6d1c9e21",
            type="payment.received",
            data={"payment_id": 1, "account_id": 1},
            occurred_at=utcnow(),
        )
        session.add(event)
        session.flush()
        delivery = WebhookDelivery(
            institution_id=admin.institution_id,
            event_id=event.id,
            subscription_id=subscription.id,
            status=DeliveryStatus.dead,
            attempts=8,
            last_attempt_at=utcnow(),
            last_status_code=500,
            last_error="HTTP 500",
        )
        session.add(delivery)
        session.commit()
        return delivery.id


def test_an_admin_subscribes_and_replays_a_dead_letter(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    log_in(page, live_server, "admin", next_path="/admin/webhooks")
    expect(page.locator("h1")).to_have_text("系统管理")
    expect(page.locator(".empty-state").first).to_contain_text("尚无订阅")

    page.fill("#webhook-url", "http://recoup-events.invalid/recoup/events")
    page.fill("#webhook-description", "CRM")
    page.check("input[name=event_types][value='payment.received']")
    page.check("input[name=event_types][value='case.closed']")
    page.click("form[action='/admin/webhooks'] button[type=submit]")
    secret = page.get_by_test_id("webhook-secret")
    expect(secret).to_contain_text("whsec_")
    expect(page.get_by_test_id("webhook-table")).to_contain_text("case.closed")
    screenshot(page, tmp_path / "webhooks-zh.png", title="事件推送")

    delivery_id = _dead_letter(live_server)
    page.goto(f"{live_server.url}/admin/webhooks")
    expect(page.get_by_test_id("webhook-secret")).to_have_count(0)  # shown once only
    expect(page.get_by_test_id("dead-letter-table")).to_contain_text("HTTP 500")
    page.click(f"[data-testid=replay-{delivery_id}]")
    expect(page.locator(".flash-list")).to_contain_text("该推送正在重新发送")
    with database_session(live_server) as session:
        replayed = session.get(WebhookDelivery, delivery_id)
        assert replayed is not None
        assert replayed.status != DeliveryStatus.dead

    page.goto(f"{live_server.url}/lang?locale=en&next=/admin/webhooks")
    expect(page.locator("h2").first).to_contain_text("Subscriptions")
    expect(page.get_by_test_id("delivery-counts")).to_contain_text("Dead letters")
    screenshot(page, tmp_path / "webhooks-en.png", title="Webhooks")


def test_a_manager_has_no_webhooks_tab(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "manager")
    response = page.goto(f"{live_server.url}/admin/webhooks")
    assert response is not None
    assert response.status == 403
