"""In headless Chromium: an agent reads the script library in Chinese and English, sees the
case's suggested script with its guidance, changes it by who answered, and logs a contact with
the script used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.cases import service as cases_service
from recoup.models.cases import Case
from recoup.models.compliance import MessageTemplate
from recoup.models.contact import ContactAttempt
from recoup.models.identity import User
from recoup.models.institution import Institution
from tests.scripts.helpers import approve_defaults
from tests.web.support import LiveServer, database_session, log_in, screenshot

pytestmark = pytest.mark.browser
SCREENSHOTS = Path("/tmp/recoup-scripts-screenshots")


def _prepare(server: LiveServer) -> int:
    """Approve the default scripts of the test bank and give the agent the debtor's case."""
    with database_session(server) as session:
        institution = session.scalars(select(Institution).filter_by(code="WEBBANK")).one()
        users = {
            user.username: user
            for user in session.scalars(select(User).filter_by(institution_id=institution.id))
        }
        approve_defaults(session, institution, users["manager"], users["compliance-officer"])
        cases_service.sync_cases(session, institution_id=institution.id)
        case = session.scalars(select(Case).filter_by(debtor_id=server.seeded.debtor_id)).one()
        case.owner_id = users["agent"].id
        session.commit()
        return case.id


def test_an_agent_reads_the_library_and_a_cases_suggestion(
    page: Page, live_server: LiveServer
) -> None:
    case_id = _prepare(live_server)
    SCREENSHOTS.mkdir(exist_ok=True)
    log_in(page, live_server, "agent", next_path="/scripts")
    library = page.get_by_test_id("script-library")
    expect(library.locator("[data-situation=third_party] [data-testid=script]")).to_contain_text(
        "不透露来电原因"
    )
    expect(page.get_by_test_id("script-performance")).to_be_visible()
    screenshot(page, SCREENSHOTS / "library-zh.png", title="催收话术")

    page.goto(f"{live_server.url}/lang?locale=en&next=/scripts")
    expect(library.locator("[data-situation=hardship] h2")).to_have_text("Hardship")
    expect(library.locator("[data-situation=hardship] [data-testid=script]")).to_contain_text(
        "Never suggest borrowing elsewhere to pay"
    )
    screenshot(page, SCREENSHOTS / "library-en.png", title="Call scripts")

    # The case's script panel: the opening for the debtor, rendered with the masked name.
    page.goto(f"{live_server.url}/cases/{case_id}/script?locale=en-US")
    panel = page.get_by_test_id("script-panel")
    expect(panel).to_have_attribute("data-situation", "first_contact")
    expect(panel.get_by_test_id("script-text")).to_contain_text("This call may be recorded")
    page.goto(f"{live_server.url}/cases/{case_id}/script?locale=en-US&answered=wrong_number")
    expect(panel).to_have_attribute("data-situation", "wrong_number")
    expect(panel.get_by_test_id("script-text")).to_contain_text("I must have the wrong number")


def _script_id(server: LiveServer, situation: str, locale: str) -> int:
    with database_session(server) as session:
        return session.scalars(
            select(MessageTemplate.id).filter_by(situation=situation, locale=locale)
        ).one()


def test_the_case_page_suggests_a_script_and_logs_the_one_used(
    page: Page, live_server: LiveServer
) -> None:
    case_id = _prepare(live_server)
    SCREENSHOTS.mkdir(exist_ok=True)
    log_in(page, live_server, "agent", next_path=f"/cases/{case_id}")
    panel = page.get_by_test_id("script-panel")
    expect(panel).to_have_attribute("data-situation", "first_contact")
    expect(panel.get_by_test_id("script-text")).to_contain_text("本次通话可能会被录音")
    expect(panel.get_by_test_id("script-guidance")).to_contain_text("先核实对方是否为本人")
    opening = _script_id(live_server, "first_contact", "zh-CN")
    expect(page.get_by_test_id("script-used")).to_have_value(str(opening))
    screenshot(page, SCREENSHOTS / "case-zh.png", title=re.compile(r"案件.*"))

    # Someone else picks up: the panel swaps to the third-party script, nothing about the debt.
    page.click("[data-answered=third_party]")
    panel = page.get_by_test_id("script-panel")
    expect(panel).to_have_attribute("data-situation", "third_party")
    expect(panel.get_by_test_id("script-text")).not_to_contain_text("还款")
    third = _script_id(live_server, "third_party", "zh-CN")
    expect(page.get_by_test_id("script-used")).to_have_value(str(third))

    # The agent logs the call they took in with the opening script instead.
    page.select_option("[data-testid=script-used]", str(opening))
    page.select_option("[data-testid=log-outcome]", "right_party")
    page.check("[data-testid=log-inbound]")
    page.click("[data-testid=log-submit]")
    expect(page.get_by_test_id("script-panel")).to_be_visible()
    with database_session(live_server) as session:
        used = session.scalars(
            select(ContactAttempt.script_id)
            .filter_by(debtor_id=live_server.seeded.debtor_id)
            .order_by(ContactAttempt.id.desc())
        ).first()
    assert used == opening

    page.goto(f"{live_server.url}/lang?locale=en&next=/cases/{case_id}")
    expect(page.get_by_test_id("script-panel")).to_contain_text("Suggested script")
    screenshot(page, SCREENSHOTS / "case-en.png", title=re.compile(r"Case.*"))
