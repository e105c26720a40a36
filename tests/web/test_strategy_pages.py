"""In headless Chromium: a manager copies a preset, sees validation by line and today's counts,
activates it, and reads an experiment's arms with intervals — in Chinese and in English."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.cases import service as cases
from recoup.models import Account, Institution
from recoup.models.audit import AuditEvent
from recoup.models.cases import Case
from recoup.strategy import service
from recoup.strategy.document import StrategyEvent
from recoup.strategy.presets import preset_text
from tests.strategy.test_service import approve_preset_templates
from tests.web.support import LiveServer, database_session, log_in, screenshot

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp")


def _prepare(server: LiveServer) -> None:
    with database_session(server) as session:
        institution = session.execute(
            select(Institution).where(Institution.code == "WEBBANK")
        ).scalar_one()
        approve_preset_templates(session, institution)
        cases.sync_cases(session, institution_id=institution.id)
        session.commit()


def test_a_manager_edits_checks_and_activates_a_strategy(
    page: Page, live_server: LiveServer
) -> None:
    _prepare(live_server)
    log_in(page, live_server, "manager", next_path="/strategies")
    expect(page.locator("h1")).to_have_text("催收策略")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.fill("[data-testid=strategy-code]", "cf_web")
    page.fill("[data-testid=strategy-name]", "网页策略")
    page.select_option("[data-testid=strategy-preset]", "consumer_finance")
    page.click("[data-testid=strategy-create]")

    expect(page.locator(".flash, [role=status]").first).to_be_visible()
    expect(page.get_by_test_id("version-status")).to_have_text("草稿")
    segments = len(yaml.safe_load(preset_text("consumer_finance"))["segments"])
    expect(page.get_by_test_id("preview-row")).to_have_count(segments)
    assigned = sum(
        int(text)
        for text in page.locator(
            "[data-testid=preview-row] [data-testid=assigned]"
        ).all_inner_texts()
    )
    assert assigned > 0
    expect(page.locator("[data-testid=finding][data-code=overlap]").first).to_contain_text("重叠")
    expect(page.locator("[data-testid=flow]")).to_have_count(segments)
    expect(
        page.locator("[data-testid=flow][data-segment=young_digital] [data-testid=flow-path]")
    ).to_have_count(3)
    screenshot(page, SHOTS / "strategy-editor-zh.png", title="网页策略 · 催收策略")

    # A mistake is shown by its line, without saving.
    document = page.get_by_test_id("document")
    text = document.input_value()
    document.fill(text.replace("channel: letter", "channel: pigeon", 1))
    page.click("[data-testid=check]")
    problem = page.get_by_test_id("problem").first
    expect(problem).to_contain_text("行")
    expect(problem).to_contain_text("channel")

    # The stored draft is unchanged, and it can be activated.
    page.goto(page.url.split("/check")[0].replace("/check", ""))
    page.click("[data-testid=activate]")
    expect(page.get_by_test_id("version-status")).to_have_text("生效中")
    expect(page.get_by_test_id("immutable")).to_be_visible()
    with database_session(live_server) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "strategy.activate")
        ).all()
        assert actions == ["strategy.activate"]

    # An event re-routes a case at once; the account page shows the step and why.
    account_id = live_server.seeded.account_id
    with database_session(live_server) as session:
        account = session.get(Account, account_id)
        assert account is not None
        institution = session.get(Institution, account.institution_id)
        case_id = session.scalar(
            select(Case.id).where(
                Case.debtor_id == account.debtor_id, Case.live_debtor_id.is_not(None)
            )
        )
        assert institution is not None
        assert case_id is not None
        service.apply_event(
            session, institution=institution, case_id=case_id, event=StrategyEvent.DISPUTE
        )
        session.commit()
    page.goto(f"{live_server.url}/accounts/{account_id}")
    panel = page.get_by_test_id("strategy-panel")
    expect(panel.get_by_test_id("case-step")).to_have_text("hold")
    expect(panel).to_contain_text("所有渠道已停止")
    expect(panel).to_contain_text("异议")

    page.goto(page.url.split("/accounts")[0] + "/strategies")
    page.click("[data-testid=strategy-row] a")
    page.click("[data-testid=experiments-link]")
    expect(page.locator("h1")).to_have_text("实验")
    expect(page.get_by_test_id("arm-row")).to_have_count(3)
    expect(page.get_by_test_id("experiment-chart")).to_have_attribute("data-rendered", "true")
    screenshot(page, SHOTS / "strategy-experiments-zh.png", title="实验 · 网页策略")

    page.goto(f"{live_server.url}/lang?locale=en&next=/strategies")
    expect(page.locator("h1")).to_have_text("Strategies")
    expect(page.get_by_test_id("active-version")).to_have_text("v1")
    page.click("[data-testid=strategy-row] a")
    expect(page.get_by_test_id("version-status")).to_have_text("in force")
    screenshot(page, SHOTS / "strategy-editor-en.png", title="网页策略 · Strategies")


def test_another_institution_s_strategy_is_not_found(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "other-manager", next_path="/strategies")
    response = page.goto(f"{live_server.url}/strategies/1")
    assert response is not None
    assert response.status == 404
