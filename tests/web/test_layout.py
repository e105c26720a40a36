"""At a 1366 px laptop width, tables stay inside their cards; at a 390 px phone width the page
does not scroll sideways; the site icon loads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page

from recoup.audit import service as audit
from recoup.models import Institution
from recoup.models.scoring import ModelState, ModelVersion
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser

LONG_HASH = "5634892eef8e" * 8
LONG_SOURCE = "portfolio:DEMO-CF:as_of=2026-12-07:horizon=30d:share=0.5:snapshots=6:" + "x" * 40

OVERFLOWING_TABLES = """() => [...document.querySelectorAll('.card table')].filter(table => {
  const card = table.closest('.card');
  return table.getBoundingClientRect().right > card.getBoundingClientRect().right + 1;
}).map(table => table.dataset.testid || table.className)"""


@pytest.fixture(scope="module")
def long_rows(live_server: LiveServer) -> LiveServer:
    """Audit events and models with long identifiers, like the demo's."""
    with database_session(live_server) as session:
        institution = session.query(Institution).filter_by(code="WEBBANK").one()
        for number in range(3):
            audit.record(
                session,
                actor="demo-seed",
                action="models.train",
                object_type="model_version",
                object_id=f"scorecard-20261206-{LONG_HASH[:12]}{number}",
                institution_id=institution.id,
                details={"sha256": LONG_HASH, "source": LONG_SOURCE, "data_fingerprint": LONG_HASH},
            )
        for family in ("scorecard", "gbm"):
            session.add(
                ModelVersion(
                    version=f"{family}-20261206-{LONG_HASH[:12]}",
                    institution_id=institution.id,
                    family=family,
                    state=ModelState.candidate,
                    source=LONG_SOURCE,
                    target="pays",
                    positive_label="1",
                    features=[],
                    metrics={"auc": 0.8036, "ks": 0.5657, "gini": 0.6072, "brier": 0.0723},
                    data_fingerprint=LONG_HASH[:64],
                    trained_by="demo-seed",
                    trained_at=datetime(2026, 12, 6, tzinfo=UTC),
                    artifact_sha256=LONG_HASH[:64],
                    artifact_size=1,
                )
            )
        session.commit()
    return live_server


@pytest.fixture
def laptop_page(browser: Browser) -> Iterator[Page]:
    for_context = browser.new_context(
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
        viewport={"width": 1366, "height": 768},
    )
    for_context.set_default_timeout(10_000)
    yield for_context.new_page()
    for_context.close()


class TestLaptopWidth:
    @pytest.mark.parametrize("path", ["/audit", "/models", "/accounts"])
    def test_tables_fit_their_cards(
        self, laptop_page: Page, long_rows: LiveServer, path: str
    ) -> None:
        log_in(laptop_page, long_rows, "auditor", next_path=path)
        assert laptop_page.locator(".card table").count() > 0
        assert laptop_page.evaluate(OVERFLOWING_TABLES) == []


PAGE_OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    for_context = browser.new_context(
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
        viewport={"width": 390, "height": 844},
    )
    for_context.set_default_timeout(10_000)
    yield for_context.new_page()
    for_context.close()


class TestPhoneWidth:
    def test_the_policy_in_force_scrolls_inside_its_card(
        self, phone_page: Page, live_server: LiveServer
    ) -> None:
        log_in(phone_page, live_server, "compliance-officer", next_path="/compliance")
        assert phone_page.locator("[data-testid=policy-overrides]").count() == 1
        assert phone_page.evaluate(PAGE_OVERFLOW) <= 0


def test_every_page_has_a_site_icon(laptop_page: Page, live_server: LiveServer) -> None:
    icon = laptop_page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.status == 200
    assert icon.headers["content-type"] == "image/x-icon"
