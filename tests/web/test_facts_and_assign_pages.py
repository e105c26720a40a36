"""In headless Chromium: the compliance facts panel of a debtor and the assign form of an account."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.compliance.certifications import service as certifications_service
from recoup.compliance.facts import service as facts_service
from recoup.identity import service as identity
from recoup.models import Account, Debtor, User
from recoup.models.audit import AuditEvent
from tests.factories import agent_of
from tests.web.support import PASSWORD, LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


def _account(server: LiveServer) -> Account:
    with database_session(server) as session:
        account = session.get(Account, server.seeded.account_id)
        assert account is not None
        session.expunge(account)
        return account


def test_a_compliance_officer_records_facts_on_the_debtor_page(
    page: Page, live_server: LiveServer
) -> None:
    account = _account(live_server)
    debtor_path = f"/debtors/{live_server.seeded.debtor_id}"
    log_in(page, live_server, "compliance-officer", next_path=debtor_path)
    panel = page.locator("[data-testid=facts-panel]")
    expect(panel).to_contain_text("合规事实")
    # A CN institution's form shows the facts its pack reads, not US Reg F's.
    expect(page.locator("[data-testid=fact-work_contact_forbidden]")).to_have_count(0)
    expect(
        page.locator(f"[data-testid=fact-{account.external_id}-validation_notice_sent_on]")
    ).to_have_count(0)
    expect(page.locator("[data-testid=fact-cease_contact]")).not_to_be_checked()
    page.check("[data-testid=fact-cease_contact]")
    page.check("[data-testid=fact-disputed]")
    page.click("[data-testid=facts-submit]")
    expect(page.locator(".flash-list")).to_contain_text("合规事实已保存（2 项变更）")
    expect(page.locator("[data-testid=fact-cease_contact]")).to_be_checked()
    with database_session(live_server) as session:
        debtor = session.get(Debtor, live_server.seeded.debtor_id)
        assert debtor is not None
        assert (debtor.cease_contact, debtor.disputed) == (True, True)
        assert debtor.work_contact_forbidden is False
        actions = session.execute(
            select(AuditEvent.object_type).where(AuditEvent.action == "compliance.facts_update")
        ).scalars()
        assert sorted(actions) == ["debtor"]
        # Later tests share the seeded debtor: leave it contactable.
        debtor.cease_contact = False
        debtor.disputed = False
        session.commit()


def test_inconvenient_times_and_places_are_recorded_on_the_debtor_page(
    page: Page, live_server: LiveServer
) -> None:
    debtor_path = f"/debtors/{live_server.seeded.debtor_id}"
    log_in(page, live_server, "compliance-officer", next_path=debtor_path)
    expect(page.locator("[data-testid=facts-inconvenient]")).to_contain_text("不便联系")
    page.fill("[data-testid=fact-inconvenient-times]", "12:00-13:00\n22:00-08:00 sat,sun")
    page.check("[data-testid=fact-inconvenient-workplace]")
    page.click("[data-testid=facts-submit]")
    expect(page.locator(".flash-list")).to_contain_text("合规事实已保存（2 项变更）")
    expect(page.locator("[data-testid=fact-inconvenient-times]")).to_have_value(
        "12:00-13:00\n22:00-08:00 sat,sun"
    )
    expect(page.locator("[data-testid=fact-inconvenient-workplace]")).to_be_checked()
    expect(page.locator("[data-testid=fact-inconvenient-home]")).not_to_be_checked()
    page.fill("[data-testid=fact-inconvenient-times]", "after lunch")
    page.click("[data-testid=facts-submit]")
    expect(page.locator(".flash-list")).to_contain_text("inconvenient_times")
    with database_session(live_server) as session:
        debtor = session.get(Debtor, live_server.seeded.debtor_id)
        assert debtor is not None
        stated = facts_service.inconvenient_for(session, debtor=debtor)
        assert stated.time_labels == ["12:00-13:00", "22:00-08:00 sat,sun"]
        assert stated.place_names == ["workplace"]


def test_a_team_lead_assigns_an_account_to_a_certified_agent_only(
    page: Page, live_server: LiveServer
) -> None:
    today = date.today()
    with database_session(live_server) as session:
        lead = session.execute(select(User).where(User.username == "team-lead")).scalar_one()
        certified = identity.create_user(
            session,
            username="agent-certified",
            role="agent",
            institution_id=lead.institution_id,
            password=PASSWORD,
            display_name="持证催收员",
            actor="test",
        )
        assert lead.institution_id is not None
        certifications_service.grant_certification(
            session,
            institution_id=lead.institution_id,
            user_id=certified.id,
            course="合规培训",
            issued_on=today - timedelta(days=10),
            expires_on=today + timedelta(days=200),
            actor="test",
        )
        session.commit()
        certified_id = certified.id
    account_id = live_server.seeded.account_id
    log_in(page, live_server, "team-lead", next_path=f"/accounts/{account_id}")
    choice = page.locator("[data-testid=assign-agent]")
    expect(choice).to_be_visible()
    labels = [text.strip() for text in choice.locator("option").all_inner_texts()]
    assert labels == ["—", "持证催收员 (agent-certified)"]
    choice.select_option(str(certified_id))
    page.click("[data-testid=assign-submit]")
    expect(page.locator(".flash-list")).to_contain_text("已分配")
    with database_session(live_server) as session:
        stored = session.get(Account, account_id)
        assert stored is not None
        assert agent_of(session, stored) == certified_id


def test_an_auditor_sees_neither_form(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "auditor", next_path=f"/debtors/{live_server.seeded.debtor_id}")
    expect(page.locator("[data-testid=debtor-heading]")).to_be_visible()
    expect(page.locator("[data-testid=facts-slot]")).to_have_count(0)
    expect(page.locator("[data-testid=facts-panel]")).to_have_count(0)
    page.goto(f"{live_server.url}/accounts/{live_server.seeded.account_id}")
    expect(page.locator("[data-testid=account-heading]")).to_be_visible()
    expect(page.locator("[data-testid=assign-slot]")).to_have_count(0)
