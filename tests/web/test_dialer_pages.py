"""The call list page in Chromium: an agent builds a list through the gate, sees why rows are
blocked, calls from the page and exports for the dialer, in Chinese and English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.cases import service as cases_service
from recoup.kit.clock import local_today
from recoup.models.cases import Case
from recoup.models.identity import User
from tests.factories import certify
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


def _own_cases(server: LiveServer) -> None:
    """Give the seeded agent two live cases: the seeded debtor's, and one with no phone."""
    with database_session(server) as session:
        agent = session.scalars(select(User).where(User.username == "agent")).one()
        certify(session, agent)
        cases_service.sync_cases(session, institution_id=agent.institution_id or 0)
        cases = session.scalars(select(Case).where(Case.institution_id == agent.institution_id))
        owned = [case for case in cases if case.debtor_id == server.seeded.debtor_id]
        blocked = session.scalars(
            select(Case).where(
                Case.institution_id == agent.institution_id,
                Case.debtor_id != server.seeded.debtor_id,
            )
        ).first()
        assert blocked is not None
        for case in [*owned, blocked]:
            case.owner_id = agent.id
        session.commit()


def test_an_agent_builds_a_call_list_and_exports_it(page: Page, live_server: LiveServer) -> None:
    _own_cases(live_server)
    log_in(page, live_server, "agent", next_path="/dialer")
    expect(page.locator("h1")).to_have_text("外呼名单")
    expect(page.locator("[data-testid=empty-state]")).to_contain_text("尚无外呼名单")
    tomorrow = local_today("Asia/Shanghai") + timedelta(days=1)
    page.fill("#day", tomorrow.isoformat())
    page.click("[data-testid=build]")
    expect(page.locator("[data-testid=list-summary]")).to_contain_text("可联系 1 条 · 拦截 1 条")
    allowed = page.locator("[data-testid=call-row][data-allowed=true]")
    expect(allowed).to_have_count(1)
    expect(allowed).to_contain_text("138****5678")
    expect(allowed.locator("[data-testid=call-tel]")).to_have_text("拨打")
    blocked = page.locator("[data-testid=call-row][data-allowed=false]")
    expect(blocked.locator("[data-testid=blocked-reason]")).to_contain_text("没有可用的电话号码")
    page.screenshot(path="/tmp/field-dialer-zh.png", full_page=True)

    with page.expect_download() as download:
        page.click("[data-testid=export-masked]")
    text = download.value.path().read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("entry_id,position,case_id")
    assert "138****5678" in text
    assert len(text.splitlines()) == 2

    page.goto(f"{live_server.url}/lang?locale=en&next=/dialer")
    expect(page.locator("h1")).to_have_text("Call lists")
    expect(page.locator("[data-testid=list-summary]")).to_contain_text("1 allowed · 1 blocked")
    expect(
        page.locator("[data-testid=call-row][data-allowed=true] [data-testid=call-tel]")
    ).to_have_text("Call")
    page.screenshot(path="/tmp/field-dialer-en.png", full_page=True)
