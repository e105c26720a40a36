"""The promises panel on the account page, driven in Chromium: record, see, cancel."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.models.workbench import Promise, PromiseStatus
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


def test_an_agent_records_and_cancels_a_promise(page: Page, live_server: LiveServer) -> None:
    account_id = live_server.seeded.account_id
    log_in(page, live_server, "agent", next_path=f"/accounts/{account_id}")
    panel = page.locator("[data-testid=promises-panel]")
    expect(panel.locator("[data-testid=promises-empty]")).to_have_text("该账户暂无承诺还款记录。")

    # More than the balance (¥1,884.56): refused next to the amount, in the page's language.
    page.fill("[data-testid=promise-amount]", "5000")
    page.click("[data-testid=promise-submit]")
    expect(panel.locator("[data-testid=promise-error-amount]")).to_contain_text("超过欠款余额")
    expect(page.locator("[data-testid=promise-amount]")).to_have_value("5000")

    page.fill("[data-testid=promise-amount]", "800.50")
    page.select_option("[data-testid=promise-channel]", "sms")
    page.click("[data-testid=promise-submit]")
    expect(panel.locator("[data-testid=promises-message]")).to_have_text("承诺已记录。")
    row = panel.locator("[data-testid=promise-row]")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "pending")
    expect(row).to_contain_text("¥800.50")
    expect(row.locator("[data-testid=promise-status]")).to_have_text("待履行")
    # One pending promise per account: the form is gone until it is resolved or cancelled.
    expect(panel.locator("[data-testid=promise-form]")).to_have_count(0)

    with database_session(live_server) as session:
        promise = session.execute(
            select(Promise).where(Promise.account_id == account_id)
        ).scalar_one()
        assert (promise.amount, promise.channel, promise.created_by) == (80_050, "sms", "agent")

    row.locator("[data-testid=promise-cancel]").click()
    expect(row).to_have_attribute("data-status", "cancelled")
    expect(panel.locator("[data-testid=promise-form]")).to_have_count(1)
    with database_session(live_server) as session:
        status = session.execute(
            select(Promise.status).where(Promise.account_id == account_id)
        ).scalar_one()
        assert status == PromiseStatus.cancelled


def test_an_auditor_sees_promises_without_the_form(page: Page, live_server: LiveServer) -> None:
    account_id = live_server.seeded.account_id
    log_in(page, live_server, "auditor", next_path=f"/accounts/{account_id}")
    panel = page.locator("[data-testid=promises-panel]")
    expect(panel.locator("h2")).to_have_text("承诺还款")
    expect(panel.locator("[data-testid=promise-form]")).to_have_count(0)
    expect(panel.locator("[data-testid=promise-cancel]")).to_have_count(0)
