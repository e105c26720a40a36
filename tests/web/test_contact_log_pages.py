"""The contact log on the debtor page, driven in Chromium: empty, then a contact, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.contact import service as contact_service
from recoup.contact.channels import Channel
from recoup.contact.rules import OutcomeCode
from recoup.models.debtor import ContactPoint, Debtor
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser


def test_an_agent_sees_the_debtor_s_contact_log(page: Page, live_server: LiveServer) -> None:
    debtor_id = live_server.seeded.debtor_id
    log_in(page, live_server, "agent", next_path=f"/debtors/{debtor_id}")
    log = page.locator("[data-testid=contact-log]")
    expect(log.locator("[data-testid=contact-log-heading]")).to_have_text("联系记录")
    expect(log.locator("[data-testid=empty-state]")).to_contain_text("暂无联系记录")

    with database_session(live_server) as session:
        debtor = session.get(Debtor, debtor_id)
        assert debtor is not None
        phone = session.scalars(
            select(ContactPoint).where(ContactPoint.debtor_id == debtor_id)
        ).first()
        assert phone is not None
        contact_service.log_inbound(
            session,
            institution_id=debtor.institution_id,
            debtor_id=debtor_id,
            channel=Channel.CALL,
            started_at=datetime(2026, 11, 20, 2, 30, tzinfo=UTC),
            actor="agent",
            outcome=OutcomeCode.PROMISE_MADE,
            contact_point_id=phone.id,
            account_id=live_server.seeded.account_id,
        )
        session.commit()

    page.reload()
    row = log.locator("[data-testid=contact-log-row]")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "made")
    expect(row).to_contain_text("138****5678")
    expect(row).to_contain_text("呼入")
    expect(row.locator("[data-testid=contact-log-outcome]")).to_contain_text("承诺还款")
    expect(row.locator("[data-testid=contact-log-outcome]")).to_contain_text("本人")

    page.goto(f"{live_server.url}/lang?locale=en&next=/debtors/{debtor_id}/contacts")
    expect(page.locator("[data-testid=contact-log-heading]")).to_have_text("Contact log")
    expect(page.locator("[data-testid=contact-log-outcome]")).to_contain_text("Promise to pay made")
    expect(page.locator("[data-testid=contact-log-row]")).to_contain_text("Inbound")
