"""In headless Chromium: an agent proposes payment plans; a manager approves a large discount."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.models.plans import PaymentPlan
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


def _plans(server: LiveServer) -> list[tuple[str, int, str | None]]:
    with database_session(server) as session:
        rows = session.execute(
            select(PaymentPlan.status, PaymentPlan.discount, PaymentPlan.decided_by).order_by(
                PaymentPlan.id
            )
        )
        return [(status, discount, decided) for status, discount, decided in rows]


def test_an_agent_proposes_and_a_manager_approves_a_discount(
    page: Page, live_server: LiveServer
) -> None:
    path = f"/accounts/{live_server.seeded.account_id}"
    log_in(page, live_server, "agent", next_path=path)
    panel = page.locator("[data-testid=plans-panel]")
    expect(panel.locator("[data-testid=plans-empty]")).to_be_visible()

    # A down payment bigger than the balance is refused with words, and nothing is kept.
    page.fill("[data-testid=plan-down-payment]", "999999")
    page.click("[data-testid=plan-submit]")
    expect(page.locator("[data-testid=plans-error]")).to_contain_text("首付须小于约定总额")
    assert _plans(live_server) == []

    page.fill("[data-testid=plan-down-payment]", "0")
    page.fill("[data-testid=plan-discount]", "300")
    page.click("[data-testid=plan-submit]")
    expect(page.locator("[data-testid=plans-message]")).to_contain_text("待经理审批")
    expect(page.locator("[data-testid=plan-status]")).to_have_text("待审批")
    # The proposer has no approve button; a manager does.
    expect(page.locator("[data-testid=plan-approve]")).to_have_count(0)
    page.context.clear_cookies()

    log_in(page, live_server, "manager", next_path=path)
    page.click("[data-testid=plan-approve]")
    expect(page.locator("[data-testid=plans-message]")).to_contain_text("已批准")
    expect(page.locator("[data-testid=plan-status]")).to_have_text("执行中")
    expect(page.locator("[data-testid=plan-instalments]")).to_be_visible()
    assert _plans(live_server) == [("active", 300_00, "manager")]

    page.click("[data-testid=plan-cancel]")
    expect(page.locator("[data-testid=plans-message]")).to_contain_text("已取消")
    assert _plans(live_server)[0][0] == "cancelled"
