"""In headless Chromium: a team lead sees agents and queues, proposes and allocates the day's work."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from recoup.cases import service as cases
from recoup.models import User
from recoup.models.audit import AuditEvent
from recoup.models.cases import AgentProfile, Case, Queue
from tests.factories import certify
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


def _prepare(server: LiveServer) -> None:
    with database_session(server) as session:
        agent = session.execute(select(User).where(User.username == "agent")).scalar_one()
        assert agent.institution_id is not None
        certify(session, agent)
        session.add(
            AgentProfile(institution_id=agent.institution_id, user_id=agent.id, daily_capacity=5)
        )
        session.add(
            Queue(
                institution_id=agent.institution_id,
                code="EARLY",
                name="早期逾期",
                rank=10,
                buckets=["M1"],
            )
        )
        session.flush()
        cases.sync_cases(session, institution_id=agent.institution_id)
        session.commit()


def test_a_team_lead_proposes_and_allocates_the_days_work(
    page: Page, live_server: LiveServer
) -> None:
    _prepare(live_server)
    log_in(page, live_server, "team-lead", next_path="/allocation")
    expect(page.locator("h1")).to_have_text("工作分配")
    row = page.locator("[data-testid=agent-row][data-username=agent]")
    expect(row.locator("[data-testid=standing]")).to_have_text("可分配")
    expect(page.locator("[data-testid=queue-row]")).to_contain_text("早期逾期")
    expect(page.locator("[data-testid=count-capacity] .stat-value")).to_have_text("5")

    page.click("[data-testid=propose]")
    proposal = page.locator("[data-testid=proposal]")
    expect(proposal).to_contain_text("尚未生效")
    expect(page.locator("[data-testid=no-scores]")).to_contain_text("还没有案件有评分")
    expect(page.locator("[data-testid=proposed-load-row]")).to_contain_text("5")
    with database_session(live_server) as session:
        owned = session.scalar(
            select(func.count()).select_from(Case).where(Case.allocated_on.is_not(None))
        )
        assert owned == 0

    page.click("[data-testid=apply]")
    expect(page.locator(".flash-list")).to_contain_text("今日工作已分配：5 个案件")
    expect(row.locator("[data-testid=today]")).to_have_text("5")
    with database_session(live_server) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Case).where(Case.allocated_on.is_not(None))
            )
            == 5
        )
        assert session.execute(
            select(AuditEvent).where(AuditEvent.action == "cases.allocate")
        ).scalar_one()


def test_agents_do_not_see_the_allocation_page(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "agent")
    expect(page.locator("nav.app-nav")).not_to_contain_text("工作分配")
    response = page.goto(f"{live_server.url}/allocation")
    assert response is not None
    assert response.status == 403


def test_a_team_lead_sets_capacity_queues_and_absences(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "team-lead", next_path="/allocation")
    row = page.locator("[data-testid=agent-row][data-username=agent]")
    row.locator("[data-testid=agent-capacity]").fill("7")
    row.locator("[data-testid=agent-skills]").fill("legal, lang:en")
    row.locator("[data-testid=agent-save]").click()
    expect(page.locator(".flash-list")).to_contain_text("已保存催收员的产能和技能")
    expect(row.locator("td").nth(2)).to_have_text("7")
    expect(row).to_contain_text("法务")

    row.locator("[data-testid=agent-skills]").fill("Legal!")
    row.locator("[data-testid=agent-save]").click()
    expect(page.locator(".flash-list")).to_contain_text("未保存")

    page.fill("[data-testid=queue-code]", "late")
    page.fill("[data-testid=queue-name]", "后期法务")
    page.check("[data-testid=queue-bucket-M4]")
    page.check("[data-testid=queue-member-agent]")
    page.click("[data-testid=queue-save]")
    expect(page.locator(".flash-list")).to_contain_text("队列已保存")
    expect(page.locator("[data-testid=queue-row]").filter(has_text="LATE")).to_contain_text("M4")
    expect(row).to_contain_text("LATE")

    page.select_option("[data-testid=absence-agent]", label="Test agent (agent)")
    page.click("[data-testid=absence-save]")
    expect(page.locator(".flash-list")).to_contain_text("已记录休假")
    expect(row.locator("[data-testid=standing]")).to_have_text("休假")
    with database_session(live_server) as session:
        actions = set(
            session.execute(
                select(AuditEvent.action).where(
                    AuditEvent.action.in_(["agent.profile", "queue.save", "agent.absence"])
                )
            ).scalars()
        )
        assert actions == {"agent.profile", "queue.save", "agent.absence"}


def test_the_page_title_is_its_heading(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "team-lead", next_path="/allocation")
    assert page.title().startswith("工作分配")
    expect(page.locator("[data-testid=queue-form]")).to_have_count(1)
