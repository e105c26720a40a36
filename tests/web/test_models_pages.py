"""Model pages in headless Chromium: registry, report charts, compare, promote, drift, account score."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup import db
from recoup.db import make_engine
from recoup.institutions import repository as institutions
from recoup.models import AuditEvent
from recoup.models.scoring import AccountScore, ModelVersion, ScoringRun
from recoup.scoring import service
from recoup.scoring.reasons import reason_text
from recoup.scoring.training import train_model
from tests.scoring.test_service import make_feature_frame
from tests.web.support import LiveServer, log_in, screenshot

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/recoup-shots")
FIRST_RUN = date(2026, 10, 31)
SECOND_RUN = date(2026, 11, 27)
DRIFTED_RUN = date(2026, 9, 30)


@dataclass(frozen=True)
class ScoringSeed:
    """The models and runs seeded for these pages."""

    champion: str
    candidate: str


def _shot(page: Page, name: str, *, title: str | re.Pattern[str]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(page, SHOTS / f"{name}.png", title=title)


@pytest.fixture(scope="module")
def scoring(live_server: LiveServer) -> ScoringSeed:
    """Train a tiny scorecard and booster through the service, promote one, score twice."""
    frame = make_feature_frame(rows=1200)
    with db.unit_of_work() as session:
        institution = institutions.require_by_code(session, "WEBBANK")
        trained = {
            family: service.register_model(
                session,
                model=train_model(
                    frame, target="pays", event_is_favourable=True, family=family, seed=3
                ),
                institution_id=institution.id,
                source="test:synthetic",
                actor="data-scientist",
            )
            for family in ("scorecard", "gbm")
        }
        service.promote_model(session, version=trained["scorecard"].version, actor="manager")
        for as_of in (FIRST_RUN, SECOND_RUN):
            service.score_delinquent_accounts(session, institution=institution, as_of=as_of)
        # A run whose inputs moved: one feature above the warning level, one above the alert.
        session.add(
            ScoringRun(
                institution_id=institution.id,
                model_version_id=trained["scorecard"].id,
                model_version=trained["scorecard"].version,
                as_of=DRIFTED_RUN,
                scored_at=datetime(2026, 9, 30, 20, tzinfo=UTC),
                accounts_scored=31,
                score_psi=0.31,
                feature_psi={"days_past_due": 0.17, "balance": 0.42, "product": 0.02},
                characteristic_shift={},
                status="alert",
            )
        )
        return ScoringSeed(champion=trained["scorecard"].version, candidate=trained["gbm"].version)


@pytest.fixture
def english(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
        viewport={"width": 1280, "height": 860},
    )
    context.set_default_timeout(10_000)
    yield context
    context.close()


def _read(server: LiveServer, statement: object) -> list[object]:
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(statement))  # type: ignore[call-overload]
    finally:
        engine.dispose()


def _expect_chart(page: Page, name: str) -> None:
    chart = page.locator(f"[data-testid={name}]")
    expect(chart).to_have_attribute("data-rendered", "true")
    expect(chart.locator("canvas")).to_have_count(1)


class TestRegistry:
    def test_a_data_scientist_sees_the_models_with_their_metrics(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "data-scientist", next_path="/models")
        rows = page.locator("[data-testid=models-table] tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator(f"[data-testid='state-{scoring.champion}']")).to_have_text("冠军")
        expect(page.locator(f"[data-testid='state-{scoring.candidate}']")).to_have_text("候选")
        expect(page.locator(f"tr[data-version='{scoring.champion}'] td.number").first).to_have_text(
            re.compile(r"0\.\d{4}")
        )
        _shot(page, "models-list", title="模型")

    def test_a_long_source_does_not_widen_the_detail_page_on_a_phone(
        self, browser: Browser, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        source = "portfolio:WEBBANK:as_of=2026-12-08:horizon=30d:share=0.5:snapshots=6"
        with db.unit_of_work() as session:
            model = session.execute(
                select(ModelVersion).where(ModelVersion.version == scoring.candidate)
            ).scalar_one()
            model.source = source
        context = browser.new_context(
            locale="zh-CN",
            extra_http_headers={"Accept-Language": "zh-CN"},
            viewport={"width": 390, "height": 844},
        )
        try:
            page = context.new_page()
            log_in(page, live_server, "data-scientist", next_path=f"/models/{scoring.candidate}")
            expect(page.get_by_text(source)).to_be_visible()
            width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert width <= inner, f"the page is {width} px wide on a {inner} px screen"
        finally:
            context.close()

    def test_a_version_breaks_only_at_its_hyphens(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "data-scientist", next_path="/models")
        link = page.locator(f"tr[data-version='{scoring.candidate}'] [data-testid=model-version] a")
        # The text of each line the version is laid out on: all but the last end at a hyphen.
        lines = link.evaluate(
            """element => {
                const text = element.firstChild, range = document.createRange(), lines = [];
                let top = null;
                for (let i = 0; i < text.length; i++) {
                    range.setStart(text, i); range.setEnd(text, i + 1);
                    const y = Math.round(range.getBoundingClientRect().top);
                    if (y !== top) { lines.push(''); top = y; }
                    lines[lines.length - 1] += text.data[i];
                }
                return lines;
            }"""
        )
        assert "".join(lines) == scoring.candidate
        assert all(line.endswith("-") for line in lines[:-1]), lines

    def test_the_detail_page_draws_its_charts_and_scorecard(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "data-scientist", next_path="/models")
        page.click(f"a[href='/models/{scoring.champion}']")
        expect(page.locator("[data-testid=model-heading]")).to_have_text(scoring.champion)
        for name in ("calibration-chart", "gains-chart", "lift-chart"):
            _expect_chart(page, name)
        expect(page.locator("[data-testid=scorecard-table] td.feature").first).to_be_visible()
        expect(page.locator("[data-testid=metric-auc]")).to_have_text(re.compile(r"0\.\d{4}"))
        # The champion cannot be promoted again.
        expect(page.locator("[data-testid=promote]")).to_have_count(0)
        _shot(page, "model-detail", title=f"{scoring.champion} · 模型")

    def test_two_versions_side_by_side_with_both_gains_curves(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "data-scientist", next_path="/models")
        page.select_option("#compare-a", scoring.champion)
        page.select_option("#compare-b", scoring.candidate)
        page.click("[data-testid=compare-form] button[type=submit]")
        page.wait_for_url(re.compile(r"/models/compare\?a="))
        table = page.locator("[data-testid=compare-table]")
        expect(table.locator("thead th")).to_have_text(["", scoring.champion, scoring.candidate])
        expect(table.locator("tr[data-metric=auc] td")).to_have_count(2)
        _expect_chart(page, "gains-chart")
        series = page.evaluate(
            "() => echarts.getInstanceByDom(document.querySelector('[data-testid=gains-chart]'))"
            ".getOption().series.map((s) => s.name)"
        )
        assert series[:2] == [scoring.champion, scoring.candidate]
        _shot(page, "models-compare", title="比较两个模型 · 模型")

    def test_an_agent_may_not_open_the_models_pages(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "agent")
        expect(page.locator(".app-nav a[data-nav=models]")).to_have_count(0)
        for path in ("/models", f"/models/{scoring.champion}", "/models/drift"):
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None
            assert response.status == 403, path

    def test_an_auditor_reads_models_but_sees_no_promote_button(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "auditor", next_path=f"/models/{scoring.candidate}")
        expect(page.locator("[data-testid=model-heading]")).to_have_text(scoring.candidate)
        expect(page.locator("[data-testid=promote]")).to_have_count(0)


class TestDrift:
    def test_feature_psi_is_coloured_by_warning_and_alert_levels(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "data-scientist", next_path="/models/drift")
        expect(page.locator("[data-testid=runs-table] tbody tr")).to_have_count(3)
        _expect_chart(page, "psi-chart")
        table = page.locator("[data-testid=feature-psi-table]")
        # The drifted run is the oldest of the three, so its column comes last.
        warn = table.locator("td[data-feature=days_past_due]").last
        alert = table.locator("td[data-feature=balance]").last
        stable = table.locator("td[data-feature=product]").last
        for cell, status, text in (
            (warn, "warn", "0.1700"),
            (alert, "alert", "0.4200"),
            (stable, "stable", "0.0200"),
        ):
            expect(cell).to_have_attribute("data-status", status)
            expect(cell).to_have_text(text)
        colours = {
            name: cell.evaluate("(element) => getComputedStyle(element).backgroundColor")
            for name, cell in (("warn", warn), ("alert", alert), ("stable", stable))
        }
        assert len(set(colours.values())) == 3, colours
        assert "rgba(0, 0, 0, 0)" not in colours.values()
        _shot(page, "models-drift", title="模型漂移 · 模型")


class TestAccountScore:
    def _reasons(self, live_server: LiveServer, locale: str) -> list[str]:
        scores = _read(
            live_server,
            select(AccountScore)
            .where(AccountScore.account_id == live_server.seeded.account_id)
            .order_by(AccountScore.as_of.desc()),
        )
        latest = scores[0]
        assert isinstance(latest, AccountScore)
        return [reason_text(code, locale=locale) for code in latest.reasons[:3]]  # type: ignore[arg-type]

    def test_the_agent_sees_the_score_and_reasons_in_chinese(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        path = f"/accounts/{live_server.seeded.account_id}"
        log_in(page, live_server, "agent", next_path=path)
        panel = page.locator("[data-testid=score-panel]")
        expect(panel.locator("h2")).to_have_text("还款倾向评分")
        expect(panel.locator("[data-testid=score-grade]")).to_have_text(re.compile(r"^[A-E]$"))
        expect(panel.locator("[data-testid=score-probability]")).to_have_text(
            re.compile(r"^\d+\.\d%$")
        )
        expect(panel.locator("[data-testid=score-model]")).to_contain_text(scoring.champion)
        reasons = self._reasons(live_server, "zh")
        assert reasons
        expect(panel.locator("[data-testid=score-reasons] li")).to_have_text(reasons)
        expect(panel.locator("[data-testid=score-segment]")).to_have_text(
            re.compile(r"(早期|中期|后期) · .+ · .+")
        )
        expect(panel.locator("[data-testid=score-priority-unit]")).to_have_text(
            "每 1 元联系成本的预期回收"
        )
        expect(panel.locator("[data-testid=score-priority]")).to_have_attribute(
            "title", re.compile(r"^预期回收金额 ¥[\d,.]+ ÷ 单次.+联系成本 ¥[\d,.]+ = [\d,.]+：")
        )
        _shot(page, "account-score-zh", title=re.compile(r"\S+ · 账户"))

    def test_and_in_english(
        self, english: BrowserContext, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        page = english.new_page()
        path = f"/accounts/{live_server.seeded.account_id}"
        log_in(page, live_server, "manager", next_path=path)
        panel = page.locator("[data-testid=score-panel]")
        expect(panel.locator("h2")).to_have_text("Propensity-to-pay score")
        expect(panel.locator("[data-testid=score-reasons] li")).to_have_text(
            self._reasons(live_server, "en")
        )
        expect(panel.locator("[data-testid=score-segment]")).to_have_text(
            re.compile(r"(Early|Mid|Late) · .+ propensity · .+ balance")
        )
        expect(panel.locator("[data-testid=score-priority]")).to_have_attribute(
            "title", re.compile(r"^CN¥[\d,.]+ expected recovery ÷ CN¥[\d,.]+ per contact \(.+\) = ")
        )
        _shot(page, "account-score-en", title=re.compile(r"\S+ · Accounts"))


class TestPromotion:
    def test_a_data_scientist_promotes_the_candidate_after_confirming(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "data-scientist", next_path=f"/models/{scoring.candidate}")
        dialogs: list[str] = []

        def accept(dialog: object) -> None:
            dialogs.append(dialog.message)  # type: ignore[attr-defined]
            dialog.accept()  # type: ignore[attr-defined]

        page.once("dialog", accept)
        page.click("[data-testid=promote]")
        expect(page.locator("[data-testid=model-state]")).to_have_text("冠军")
        assert dialogs
        assert scoring.candidate in dialogs[0]
        expect(page.locator("[data-testid=promote]")).to_have_count(0)
        events = _read(
            live_server,
            select(AuditEvent).where(
                AuditEvent.action == "models.promote", AuditEvent.object_id == scoring.candidate
            ),
        )
        assert [event.actor for event in events] == ["data-scientist"]  # type: ignore[attr-defined]
        page.goto(f"{live_server.url}/models")
        expect(page.locator(f"[data-testid='state-{scoring.champion}']")).to_have_text("已退役")
        _shot(page, "model-promoted", title="模型")

    def test_dismissing_the_confirmation_changes_nothing(
        self, page: Page, live_server: LiveServer, scoring: ScoringSeed
    ) -> None:
        log_in(page, live_server, "manager", next_path=f"/models/{scoring.champion}")
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("[data-testid=promote]")
        expect(page.locator("[data-testid=model-state]")).to_have_text("已退役")
