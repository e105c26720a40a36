"""In headless Chromium: a manager reads the day's cycle report, stage by stage, case by case."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from recoup.cycle import runner
from recoup.kit import clock
from tests.web.support import LiveServer, log_in, screenshot

pytestmark = pytest.mark.browser


def test_the_cycle_pages_show_each_stage_and_where_every_case_went(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    log_in(page, live_server, "manager", next_path="/cycle")
    expect(page.locator("h1")).to_have_text("每日批处理")
    expect(page.get_by_test_id("empty-state")).to_contain_text("还没有运行过批处理")
    expect(page.get_by_test_id("run-today")).to_be_visible()

    day = clock.local_today("Asia/Shanghai")
    report = runner.run_cycle(institution_code="WEBBANK", as_of=day, actor="test")
    page.reload()
    row = page.locator(f"[data-testid=run-row][data-as-of='{day.isoformat()}']")
    expect(row).to_contain_text("已完成")
    row.locator("a").click()
    expect(page.locator("h1")).to_have_text(f"{day.isoformat()} 批处理")
    expect(page.locator("[data-testid=stage-row]")).to_have_count(10)
    expect(page.locator("[data-testid=stage-row][data-stage=gate]")).to_contain_text("合规校验")
    expect(page.get_by_test_id("count-tasks").locator(".stat-value")).to_have_text(
        f"{report.tasks_created:,}"
    )
    expect(page.locator("[data-testid=action-row]").first).to_be_visible()
    screenshot(page, tmp_path / "cycle-zh.png", title=f"{day.isoformat()} 批处理")

    page.select_option("#status", "handed_off")
    page.get_by_test_id("status-filter").locator("button").click()
    expect(page.locator("[data-testid=action-row][data-status=handed_off]").first).to_be_visible()
    expect(page.locator("[data-testid=action-row]:not([data-status=handed_off])")).to_have_count(0)

    page.goto(f"{live_server.url}/lang?locale=en&next=/cycle")
    expect(page.locator("h1")).to_have_text("Daily cycle")
    page.locator("[data-testid=run-row] a").first.click()
    expect(page.locator("[data-testid=stage-row][data-stage=gate]")).to_contain_text(
        "Compliance gate"
    )
    screenshot(page, tmp_path / "cycle-en.png", title=f"Cycle of {day.isoformat()}")
    page.goto(f"{live_server.url}/lang?locale=zh-CN&next=/cycle")


def test_agents_do_not_see_the_cycle(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "agent")
    expect(page.locator("nav.app-nav")).not_to_contain_text("每日批处理")
    response = page.goto(f"{live_server.url}/cycle")
    assert response is not None
    assert response.status == 403
