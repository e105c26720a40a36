"""The field visit page in Chromium: a routed list by city and district, a visit recorded with
its recording id, the printable sheet, in Chinese and English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from recoup.cases import service as cases_service
from recoup.kit.clock import local_today
from recoup.models.cases import Case
from recoup.models.debtor import Debtor
from recoup.models.identity import User
from tests.factories import certify, make_contact_point
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser

PLACES = [
    ("上海市", "浦东新区"),
    ("北京市", "海淀区"),
    ("上海市", "徐汇区"),
    ("上海市", "浦东新区"),
]


def _field_cases(server: LiveServer) -> None:
    """Give the seeded agent four live cases in two cities, each debtor with an address."""
    with database_session(server) as session:
        agent = session.scalars(select(User).where(User.username == "agent")).one()
        certify(session, agent)
        cases_service.sync_cases(session, institution_id=agent.institution_id or 0)
        cases = session.scalars(
            select(Case)
            .where(Case.institution_id == agent.institution_id, Case.live_debtor_id.is_not(None))
            .order_by(Case.id)
            .limit(len(PLACES))
        ).all()
        for case, (city, district) in zip(cases, PLACES, strict=True):
            debtor = session.get(Debtor, case.debtor_id)
            assert debtor is not None
            debtor.city, debtor.district = city, district
            make_contact_point(session, debtor, kind="address", value=f"{city}{district}幸福路8号")
            case.owner_id = agent.id
        session.commit()


def test_an_agent_routes_the_day_and_records_a_visit(page: Page, live_server: LiveServer) -> None:
    _field_cases(live_server)
    log_in(page, live_server, "agent", next_path="/visits")
    expect(page.locator("h1")).to_have_text("上门外访")
    tomorrow = local_today("Asia/Shanghai") + timedelta(days=1)
    page.fill("#day", tomorrow.isoformat())
    page.click("[data-testid=build]")
    expect(page.locator("[data-testid=list-summary]")).to_contain_text("可联系 4 条")
    groups = page.locator("[data-testid=route-group]")
    expect(groups).to_have_count(3)  # 浦东新区 once, with both of its visits
    places = [
        (groups.nth(i).get_attribute("data-city"), groups.nth(i).get_attribute("data-district"))
        for i in range(3)
    ]
    assert len(set(places)) == 3
    cities = [city for city, _ in places]
    assert cities == sorted(cities, key=cities.index)
    expect(page.locator("[data-testid=visit-address]").first).not_to_contain_text("幸福路8号")
    expect(page.locator("[data-testid=route-length]")).to_contain_text("公里")

    form = page.locator("[data-testid=visit-form]").first
    form.locator("[data-testid=visit-outcome]").select_option("right_party")
    form.locator("[data-testid=visit-save]").click()
    expect(page.locator(".flash-list .alert").first).to_contain_text("CN-REC")
    form = page.locator("[data-testid=visit-form]").first
    form.locator("[data-testid=visit-outcome]").select_option("right_party")
    yesterday = tomorrow - timedelta(days=2)  # a past morning, within visiting hours
    form.locator("[data-testid=visit-at]").fill(f"{yesterday.isoformat()}T10:00")
    form.locator("[data-testid=visit-ref]").fill("rec-0001.mp4")
    form.locator("[data-testid=visit-notes]").fill("本人在家，承诺周五还款")
    form.locator("[data-testid=visit-save]").click()
    expect(page.locator("[data-testid=reported]").first).to_have_text("本人接通")
    page.screenshot(path="/tmp/field-visits-zh.png", full_page=True)

    page.fill("[data-testid=sheet-form] input[name=reason]", "today's field route")
    page.click("[data-testid=sheet]")
    expect(page.locator("[data-testid=sheet-title]")).to_have_text("外访路线单")
    expect(page.locator("[data-testid=visit-address]").first).to_contain_text("幸福路8号")
    page.emulate_media(media="print")
    expect(page.locator(".app-nav")).to_be_hidden()
    page.screenshot(path="/tmp/field-visits-print.png", full_page=True)
    page.emulate_media(media="screen")

    page.goto(f"{live_server.url}/lang?locale=en&next=/visits")
    expect(page.locator("h1")).to_have_text("Field visits")
    expect(page.locator("[data-testid=reported]").first).to_have_text("Spoke with the debtor")
    page.screenshot(path="/tmp/field-visits-en.png", full_page=True)
