"""In headless Chromium: a manager compares the default strategy with the baseline on the
simulation page and reads the table and the recovery chart, in Chinese and in English."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.cases import service as cases
from recoup.models import Institution
from tests.web.support import LiveServer, database_session, log_in, screenshot

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp")


def test_a_manager_compares_strategies(page: Page, live_server: LiveServer) -> None:
    with database_session(live_server) as session:
        institution = session.execute(
            select(Institution).where(Institution.code == "WEBBANK")
        ).scalar_one()
        cases.sync_cases(session, institution_id=institution.id)
        session.commit()
    log_in(page, live_server, "manager", next_path="/simulations")
    expect(page.locator("h1")).to_have_text("策略模拟")
    expect(page.get_by_test_id("simulation-table")).to_have_count(0)
    page.fill("[data-testid=seeds]", "2")
    page.fill("[data-testid=days]", "15")
    page.click("[data-testid=simulate]")

    expect(page.get_by_test_id("simulation-row")).to_have_count(2)
    expect(page.locator("[data-testid=simulation-row][data-strategy=baseline]")).to_be_visible()
    for cell in page.get_by_test_id("violations").all_inner_texts():
        assert cell.strip() == "0"
    expect(page.locator("[data-testid=recovery-chart] polyline")).to_have_count(2)
    # How agents took cases: the baseline always by propensity × balance.
    expect(
        page.locator(
            "[data-testid=simulation-row][data-strategy=baseline] [data-testid=allocation]"
        )
    ).to_have_text("坐席按还款倾向 × 余额取案")
    screenshot(page, SHOTS / "simulations-zh.png", title="策略模拟")

    page.goto(f"{live_server.url}/simulations?run=true&strategies=default,nope&seeds=1&days=5")
    expect(page.get_by_test_id("simulation-error")).to_contain_text("nope")

    page.goto(f"{live_server.url}/lang?locale=en&next=/simulations")
    expect(page.locator("h1")).to_have_text("Strategy simulation")
    page.click("[data-testid=simulate]")
    expect(page.get_by_test_id("simulation-row")).to_have_count(2)
    expect(page.get_by_text("Recovered over time")).to_be_visible()
