"""In headless Chromium: the manager's home, agents, regions, compliance and data-quality
dashboards in Chinese and English, charts drawn and also shown as tables, exports audited, and
each role seeing only its own dashboards."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from recoup.analytics.daily import service as daily
from recoup.compliance.gate import service as gate_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.kit.clock import local_today, zone
from recoup.models import Account, Debtor, Institution
from recoup.models.audit import AuditEvent
from tests.analytics.helpers import state
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _refreshed(live_server: LiveServer) -> None:
    with database_session(live_server) as session:
        institution = session.execute(
            select(Institution).where(Institution.code == "WEBBANK")
        ).scalar_one()
        # The accounts' history: each in its bucket since forty days ago.
        today = local_today(institution.timezone)
        for account in session.scalars(
            select(Account).where(Account.institution_id == institution.id)
        ):
            state(
                session,
                account,
                today - timedelta(days=40),
                days_past_due=account.days_past_due,
                balance=account.principal,
            )
        daily.refresh_aggregates(
            session, institution=institution, as_of=local_today(institution.timezone)
        )
        session.commit()


def test_the_manager_home_in_chinese(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "manager")
    expect(page.locator("h1")).to_have_text("资产组合总览")
    expect(page.locator("[data-testid=refreshed]")).to_contain_text("每日汇总截至")
    balance = page.locator("[data-testid=headline-delinquent_balance]")
    expect(balance).to_contain_text("逾期余额")
    expect(balance.locator(".stat-value")).to_contain_text("¥")
    expect(page.locator("[data-testid=headline-kept_rate]")).to_contain_text("承诺兑现率")
    # Every chart is drawn, and is also a table.
    expect(page.locator("[data-testid=chart-buckets]")).to_have_attribute("data-rendered", "true")
    expect(page.locator("[data-testid=chart-roll_rates]")).to_have_attribute(
        "data-rendered", "true"
    )
    expect(page.locator("[data-testid=table-buckets] table tbody tr")).to_have_count(8)
    note = page.locator("[data-testid=table-buckets] .table-note").first
    expect(note).to_contain_text("日终快照")
    expect(note).to_contain_text("不含已结清、已关闭和已核销")
    expect(page.locator("[data-testid=table-work_today]")).to_contain_text("尚无队列")
    page.screenshot(path="/tmp/test_dashboard_home_zh.png", full_page=True)


def test_the_manager_home_in_english(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(
        locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    page = context.new_page()
    try:
        log_in(page, live_server, "manager")
        expect(page.locator("h1")).to_have_text("Portfolio overview")
        expect(page.locator("[data-testid=headline-collected]")).to_contain_text("Collected")
        expect(page.locator("[data-testid=table-roll_rates]")).to_contain_text("From bucket")
        page.screenshot(path="/tmp/test_dashboard_home_en.png", full_page=True)
    finally:
        context.close()


def test_filters_keep_the_period(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "manager")
    page.fill("#from", "2026-01-01")
    page.fill("#to", "2026-01-31")
    page.select_option("#product", "credit_card")
    page.click("[data-testid=apply-filters]")
    expect(page.locator("[data-testid=period]")).to_contain_text("2026年1月1日")
    assert "product=credit_card" in page.url


def test_an_export_names_who_exported_it_and_is_audited(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, "manager")
    with page.expect_download() as download:
        page.click("[data-testid=export-csv-buckets]")
    path = download.value.path()
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0][0].startswith("资产组合总览")
    assert ["导出人", "manager"] in rows
    assert ["账龄", "账户数", "余额 (CNY)"] in rows
    with database_session(live_server) as session:
        event = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "dashboards.export")
                .order_by(AuditEvent.id.desc())
            )
            .scalars()
            .first()
        )
        assert event is not None
        assert event.object_id == "home/buckets"


def test_the_fair_leaderboard_and_an_agents_day(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "team-lead", next_path="/analytics/agents")
    expect(page.locator("h1")).to_have_text("催收员与团队")
    expect(page.locator("[data-testid=table-leaderboard]")).to_contain_text("综合指数")
    page.goto(f"{live_server.url}/analytics/agent-day")
    expect(page.locator("[data-testid=choose-agent]")).to_be_visible()
    page.select_option("#agent", label="Test agent")
    page.click("[data-testid=show-day]")
    expect(page.locator("[data-testid=table-contacts]")).to_contain_text("当天没有联系记录")


def test_regions_say_why_there_is_no_map(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "manager", next_path="/analytics/regions")
    expect(page.locator("h1")).to_have_text("地区分析")
    expect(page.locator("[data-testid=no-map]")).to_contain_text("排名图")


def test_a_compliance_officer_sees_compliance_not_performance(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, "compliance-officer", next_path="/analytics/compliance")
    expect(page.locator("h1")).to_have_text("合规监控")
    complaints = page.locator("[data-testid=table-complaints]")
    expect(complaints).to_contain_text("当前提出争议的债务人")
    expect(complaints).to_contain_text("案件登记的投诉")
    expect(page.locator("[data-testid=table-templates]")).to_be_visible()
    # The home page leads to the dashboards the role opens, and says where the KPIs are.
    page.goto(f"{live_server.url}/")
    more = page.locator("[data-testid=more-dashboards]")
    expect(more.get_by_role("link", name="合规监控")).to_have_attribute(
        "href", "/analytics/compliance"
    )
    expect(more).to_contain_text("资产组合总览")
    expect(more).not_to_contain_text("后续版本")
    response = page.goto(f"{live_server.url}/analytics/agents")
    assert response is not None
    assert response.status == 403


def test_an_agent_sees_only_their_own_counts(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "agent")
    expect(page.locator("[data-testid=stat-accounts] .stat-value")).to_have_text("1")
    expect(page.locator("[data-testid=headlines]")).to_have_count(0)
    for path in ("/analytics/agents", "/analytics/agent-day", "/analytics/home/export.csv"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None
        assert response.status == 403, path


RANKED_VALUE_AXIS = """(key) => {
  const chart = echarts.getInstanceByDom(document.querySelector(`[data-testid=chart-${key}]`));
  const axis = chart.getOption().xAxis[0];
  return { type: axis.type, name: axis.name, nameLocation: axis.nameLocation };
}"""


def test_a_ranked_chart_names_its_value_axis_under_the_bars(
    page: Page, live_server: LiveServer
) -> None:
    with database_session(live_server) as session:
        debtor = session.get(Debtor, live_server.seeded.unassigned_debtor_id)
        assert debtor is not None
        institution = session.get(Institution, debtor.institution_id)
        assert institution is not None
        today = local_today(institution.timezone)
        late = datetime.combine(today, time(22, 30), tzinfo=zone(institution.timezone))
        checked = gate_service.check_contact(
            session,
            institution_id=institution.id,
            debtor_id=debtor.id,
            channel=Channel.CALL,
            party=Party.DEBTOR,
            at=late,
            actor="compliance-officer",
        )
        assert not checked.decision.allowed
        daily.refresh_aggregates(session, institution=institution, as_of=today)
        session.commit()
    log_in(page, live_server, "compliance-officer", next_path="/analytics/compliance")
    chart = page.locator("[data-testid=chart-blocks_by_rule]")
    expect(chart).to_have_attribute("data-rendered", "true")
    # At the axis' end (the default) the name was drawn past the chart's right edge.
    axis = page.evaluate(RANKED_VALUE_AXIS, "blocks_by_rule")
    assert axis["type"] == "value"
    assert axis["nameLocation"] == "middle"


def test_the_recovery_trend_marks_the_month_counted_only_to_date(
    browser: Browser, live_server: LiveServer
) -> None:
    context = browser.new_context(
        locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    page = context.new_page()
    try:
        log_in(page, live_server, "manager")
        today = date.fromisoformat(page.locator("#to").input_value())
        months = page.locator("[data-testid=table-recovery_trend] table tbody tr td:first-child")
        expect(months.last).to_contain_text(today.strftime("%Y-%m"))
        if (today + timedelta(days=1)).day != 1:
            # A part of a month beside whole ones: its lower figures are no fall.
            expect(months.last).to_have_text(
                f"{today:%Y-%m} (to {today:%b} {today.day}, {today.year})"
            )
        assert "(to " not in " ".join(months.all_inner_texts()[:-1])
        # The chart's axis names months only (a date in a label left a phone one label).
        chart = json.loads(page.locator("#recovery_trend-chart").text_content() or "{}")
        assert all(len(label) <= len("2026-12*") for label in chart["x"]), chart["x"]
        if (today + timedelta(days=1)).day != 1:
            assert chart["x"][-1] == f"{today:%Y-%m}*"
            note = page.locator("[data-testid=table-recovery_trend] .table-note").first
            expect(note).to_contain_text(f"* {today:%Y-%m} is counted to {today:%b} {today.day}")
    finally:
        context.close()
