"""In headless Chromium: what a new manager or agent reads on the pages says what it means.

Counts say what they count and as of when, priorities carry their scale, a choice is a select,
dates read in the reader's language and stay whole, and nothing overflows a 390 px screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from recoup.cases import service as cases
from recoup.compliance.gate import service as gate_service
from recoup.compliance.templates import service as templates_service
from recoup.contact.channels import Channel
from recoup.contact.rules import Party
from recoup.models import Account, Institution, User
from recoup.models.cases import Case, Queue
from recoup.models.compliance import CompliancePolicy
from recoup.models.debtor import Debtor
from recoup.models.ingest import ImportRun
from recoup.models.scoring import ModelVersion, ScoringRun
from recoup.workspace import service as workspace
from tests.factories import certify, give_to_agent, make_account, make_debtor
from tests.web.support import LiveServer, database_session, log_in

pytestmark = pytest.mark.browser

# 23:00 on a Monday in Shanghai: no calls until 08:00 on Tuesday, the 8th.
NIGHT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
QUEUE_CODE = "EARLY"
QUEUE_NAME = "早期逾期"
LONG_NUMBER = "D00000000000013"


@pytest.fixture(autouse=True)
def _night(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "utcnow", lambda: NIGHT)


@pytest.fixture(scope="module")
def case_id(live_server: LiveServer) -> int:
    """The agent's live case, in a queue, with a priority; plus a closed account of theirs."""
    with database_session(live_server) as session:
        agent = session.execute(select(User).where(User.username == "agent")).scalar_one()
        assert agent.institution_id is not None
        certify(session, agent)
        account = session.get(Account, live_server.seeded.account_id)
        assert account is not None
        cases.sync_cases(session, institution_id=agent.institution_id)
        queue = Queue(
            institution_id=agent.institution_id, code=QUEUE_CODE, name=QUEUE_NAME, buckets=["M2"]
        )
        session.add(queue)
        session.flush()
        case = session.execute(
            select(Case).where(
                Case.debtor_id == account.debtor_id, Case.live_debtor_id.is_not(None)
            )
        ).scalar_one()
        case.owner_id, case.priority, case.queue_id = agent.id, 2810, queue.id
        # A closed account in the agent's case: it is no longer held, so no count shows it.
        debtor = session.get(Debtor, account.debtor_id)
        assert debtor is not None
        closed = make_account(session, debtor, days_past_due=200, status="closed")
        give_to_agent(session, closed, agent)
        session.commit()
        return case.id


def _narrow(browser: Browser, locale: str) -> BrowserContext:
    return browser.new_context(
        locale=locale,
        extra_http_headers={"Accept-Language": locale},
        viewport={"width": 390, "height": 844},
    )


@pytest.fixture
def narrow(browser: Browser) -> Iterator[Page]:
    context = _narrow(browser, "zh-CN")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def _no_horizontal_overflow(page: Page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width <= inner, f"{page.url} is {width} px wide on a {inner} px screen"


def test_the_simple_home_says_what_it_counts_and_when(
    page: Page, live_server: LiveServer, case_id: int
) -> None:
    log_in(page, live_server, "agent")
    # Held accounts only: the closed one in the agent's case is not counted.
    expect(page.locator("[data-testid=stat-accounts]")).to_contain_text("在催账户")
    expect(page.locator("[data-testid=stat-accounts] .stat-value")).to_have_text("1")
    expect(page.locator("[data-testid=stat-delinquent]")).to_contain_text("M1 及以上")
    note = page.locator("[data-testid=bucket-counts-note]")
    expect(note).to_contain_text("统计于")
    expect(note).to_contain_text("您名下案件")
    expect(note).to_contain_text("不含已结清、已关闭和已核销")
    expect(note).to_contain_text("日终快照")


def test_the_compliance_officers_home_counts_the_institution(
    page: Page, live_server: LiveServer, case_id: int
) -> None:
    log_in(page, live_server, "compliance-officer")
    expect(page.locator("[data-testid=bucket-counts-note]")).to_contain_text("覆盖全机构")


def test_before_any_refresh_the_waterfall_and_roll_say_no_snapshot_is_written_yet(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, "manager")
    for key in ("buckets", "roll_rates"):
        table = page.locator(f"[data-testid=table-{key}]")
        expect(table.locator(f"[data-testid=empty-{key}]")).to_contain_text("尚无日终快照")
        expect(table.locator(f"[data-testid=empty-{key}]")).to_contain_text("analytics.refresh")
        # No note about a day it cannot name ("— 日终快照").
        expect(table).not_to_contain_text("—")


def test_priority_shows_its_scale_and_rank(
    page: Page, live_server: LiveServer, case_id: int
) -> None:
    log_in(page, live_server, "agent", next_path="/work")
    expect(page.locator("[data-testid=priority-heading]")).to_contain_text("每 1 元联系成本")
    expect(page.locator("[data-testid=case-row-priority]").first).to_have_text("2,810")
    page.goto(f"{live_server.url}/cases/{case_id}")
    expect(page.locator("[data-testid=case-priority]")).to_contain_text("2,810")
    expect(page.locator("[data-testid=case-priority-unit]")).to_contain_text("每 1 元联系成本")
    expect(page.locator("[data-testid=case-priority-rank]")).to_contain_text("排第 1")


def test_the_queue_filter_is_a_choice_of_the_queues_present(
    page: Page, live_server: LiveServer, case_id: int
) -> None:
    log_in(page, live_server, "agent", next_path="/work")
    queue = page.locator("#filter-queue")
    assert queue.evaluate("element => element.tagName") == "SELECT"
    expect(queue.locator("option")).to_have_count(2)
    expect(queue.locator(f"option[value={QUEUE_CODE}]")).to_have_text(
        f"{QUEUE_NAME} ({QUEUE_CODE})"
    )
    queue.select_option(QUEUE_CODE)
    page.locator("[data-testid=case-filters] button[type=submit]").click()
    page.wait_for_url(re.compile(rf".*[?&]queue={QUEUE_CODE}(&|$)"))
    expect(page.locator("[data-testid=case-row]")).to_have_count(1)
    expect(page.locator("#filter-queue")).to_have_value(QUEUE_CODE)
    # A bookmarked filter naming a queue the agent has no case in stays chosen, and finds none.
    page.goto(f"{live_server.url}/work?queue=LATE")
    expect(page.locator("#filter-queue")).to_have_value("LATE")
    expect(page.locator("[data-testid=case-row]")).to_have_count(0)


@pytest.mark.parametrize(
    ("locale", "when"), [("zh-CN", "12月8日周二 08:00"), ("en", "Tue, Dec 8 08:00")]
)
def test_the_next_allowed_day_reads_in_the_language_and_stays_whole_on_a_phone(
    browser: Browser, live_server: LiveServer, case_id: int, locale: str, when: str
) -> None:
    context = _narrow(browser, locale)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        log_in(page, live_server, "agent", next_path=f"/cases/{case_id}")
        badge = page.locator("[data-testid=badge-next][data-channel=call] [data-testid=badge-when]")
        expect(badge.first).to_contain_text(when)
        expect(badge.first).not_to_contain_text("2026-12-08")
        # The date and its time sit on one line: the first character and the time's share a top.
        tops = badge.first.evaluate(
            """(element, time) => {
                const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
                const text = walker.nextNode(), range = document.createRange();
                const top = index => {
                    range.setStart(text, index); range.setEnd(text, index + 1);
                    return Math.round(range.getBoundingClientRect().top);
                };
                const start = text.data.search(/\\d/);
                return [top(start), top(text.data.indexOf(time) + time.length - 1)];
            }""",
            "08:00",
        )
        assert tops[0] == tops[1], f"the date and its time are on different lines {tops}"
        _no_horizontal_overflow(page)
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/work", "/accounts", "/debtors"])
def test_the_agents_pages_fit_a_phone(
    narrow: Page, live_server: LiveServer, case_id: int, path: str
) -> None:
    log_in(narrow, live_server, "agent", next_path=path)
    _no_horizontal_overflow(narrow)


@pytest.mark.parametrize("width", [1366, 390])
def test_the_campaign_forms_fields_line_up(
    browser: Browser, live_server: LiveServer, width: int
) -> None:
    context = browser.new_context(
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN"},
        viewport={"width": width, "height": 900},
    )
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        log_in(page, live_server, "manager", next_path="/outbox/campaigns/new")
        boxes = [
            page.locator(selector).bounding_box()
            for selector in (
                "#campaign-name",
                "#campaign-channel",
                "#campaign-template",
                "#campaign-segments",
            )
        ]
        assert all(box is not None for box in boxes)
        widths = {round(box["width"]) for box in boxes if box}
        assert max(widths) - min(widths) <= 1, f"uneven field widths {widths}"
        lefts = sorted({round(box["x"]) for box in boxes if box})
        # Two columns side by side on a wide screen, one on a phone.
        assert len(lefts) == (2 if width > 600 else 1), lefts
        # Fields side by side start at the same height (labels and controls aligned).
        tops = {}
        for box in boxes:
            assert box is not None
            tops.setdefault(round(box["x"]), []).append(round(box["y"]))
        if width > 600:
            columns = list(tops.values())
            assert [abs(a - b) <= 1 for a, b in zip(columns[0], columns[1], strict=True)] == [
                True,
                True,
            ]
        _no_horizontal_overflow(page)
    finally:
        context.close()


def test_the_violation_queue_fits_a_phone(narrow: Page, live_server: LiveServer) -> None:
    """Each row's hidden label (for the resolution note) scrolls with the table, not the page."""
    with database_session(live_server) as session:
        debtor = session.get(Debtor, live_server.seeded.debtor_id)
        assert debtor is not None
        templates_service.scan_for_violations(
            session,
            institution_id=debtor.institution_id,
            text="客户说下周还，我告诉他再不还钱就等着瞧，客户挂断。",
            locale="zh-CN",
            source="note",
            source_id="N-390",
            debtor_id=debtor.id,
            actor="agent",
        )
        session.commit()
    log_in(narrow, live_server, "compliance-officer", next_path="/compliance/violations")
    expect(narrow.locator("[data-testid=violation-row]").first).to_be_visible()
    _no_horizontal_overflow(narrow)


def test_the_log_form_is_one_column_on_a_phone_with_its_boxes_level(
    narrow: Page, live_server: LiveServer, case_id: int
) -> None:
    log_in(narrow, live_server, "agent", next_path=f"/cases/{case_id}")
    card = narrow.locator("[data-testid=log-form-card]").bounding_box()
    callback = narrow.locator("#log-callback").bounding_box()
    point = narrow.locator("#log-point").bounding_box()
    assert card is not None
    assert callback is not None
    assert point is not None
    # The call-back's date-and-time box and the contact point take the card's width.
    assert callback["width"] > 0.8 * card["width"], (callback, card)
    assert point["width"] > 0.8 * card["width"], (point, card)
    # A two-line label does not push its box below its neighbour's.
    amount = narrow.locator("#log-promise-amount").bounding_box()
    due = narrow.locator("#log-promise-due").bounding_box()
    assert amount is not None
    assert due is not None
    assert abs(amount["y"] + amount["height"] - due["y"] - due["height"]) <= 1, (amount, due)
    _no_horizontal_overflow(narrow)


def test_a_dashboard_tables_labels_do_not_break_a_character_a_line(
    browser: Browser, live_server: LiveServer, case_id: int
) -> None:
    context = _narrow(browser, "zh-CN")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        log_in(page, live_server, "manager")
        # The queue's name (早期逾期) in today's work by queue.
        label = page.locator("[data-testid=table-work_today] td.label-cell").nth(1)
        expect(label).to_have_text(QUEUE_NAME)
        box = label.bounding_box()
        assert box is not None
        assert box["width"] >= 80, box
        _no_horizontal_overflow(page)
    finally:
        context.close()


def test_allocation_says_capacity_is_counted_in_cases(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "manager", next_path="/allocation")
    expect(page.locator("[data-testid=count-capacity]")).to_contain_text("今日产能（案件数）")
    # The queue form's check-box groups read like its other fields: no box drawn around them.
    group = page.locator("[data-testid=queue-form] fieldset").first
    assert group.evaluate("element => getComputedStyle(element).borderTopStyle") == "none"


def test_the_policy_form_names_the_preset_in_the_readers_language(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, "compliance-officer", next_path="/compliance")
    expect(page.locator("#policy-name")).to_have_value("中国消费金融预设")
    # Fields with and without hints start level.
    name, start = (page.locator(box).bounding_box() for box in ("#policy-name", "#voice-start"))
    assert name is not None
    assert start is not None
    assert abs(name["y"] - start["y"]) <= 1, (name, start)
    page.fill("#voice-end", "20:00")
    page.click("[data-testid=propose-policy]")
    expect(page.locator(".flash-list")).to_contain_text("另一位合规专员")
    # Left as shown, the name stays the preset's (shown in each reader's language).
    with database_session(live_server) as session:
        proposed = session.scalars(
            select(CompliancePolicy).order_by(CompliancePolicy.id.desc())
        ).first()
        assert proposed is not None
        assert proposed.name == "CN consumer finance"


def test_a_debtor_number_in_the_decisions_log_is_read_whole_on_a_phone(
    narrow: Page, live_server: LiveServer
) -> None:
    with database_session(live_server) as session:
        seeded = session.get(Debtor, live_server.seeded.debtor_id)
        assert seeded is not None
        bank = session.get(Institution, seeded.institution_id)
        assert bank is not None
        # A number longer than its column's heading is wide (债务人编号).
        debtor = make_debtor(session, bank, name="钱七", national_id=None, external_id=LONG_NUMBER)
        gate_service.check_contact(
            session,
            institution_id=debtor.institution_id,
            debtor_id=debtor.id,
            channel=Channel.CALL,
            party=Party.DEBTOR,
            at=NIGHT,
            actor="agent",
        )
        session.commit()
    log_in(narrow, live_server, "compliance-officer", next_path="/compliance/decisions")
    number = narrow.locator("[data-testid=decision-row] td.id-cell a", has_text=LONG_NUMBER).first
    expect(number).to_be_visible()
    _no_horizontal_overflow(narrow)
    # However narrow the table is squeezed (each column to its least width), the number stays whole.
    height, font = number.evaluate(
        """element => {
            element.closest("table").style.width = "1px";
            return [element.getBoundingClientRect().height,
                    parseFloat(getComputedStyle(element).fontSize)];
        }"""
    )
    assert height < 2 * font, f"{LONG_NUMBER} is broken over lines ({height} px at {font} px)"


def test_import_counts_have_thousands_separators(page: Page, live_server: LiveServer) -> None:
    with database_session(live_server) as session:
        seeded = session.get(Debtor, live_server.seeded.debtor_id)
        assert seeded is not None
        session.add(
            ImportRun(
                institution_id=seeded.institution_id,
                kind="accounts",
                file_name="big.csv",
                file_format="csv",
                status="completed",
                actor="manager",
                started_at=NIGHT,
                finished_at=NIGHT,
                rows_read=123_456,
                inserted=120_000,
                rejected=3_456,
            )
        )
        session.commit()
    log_in(page, live_server, "manager", next_path="/imports")
    row = page.locator("[data-testid=run-row]", has_text="big.csv")
    expect(row).to_contain_text("123,456")
    expect(row).to_contain_text("120,000")
    expect(row).to_contain_text("3,456")


def test_a_drift_alert_names_its_day_in_the_readers_language(
    page: Page, live_server: LiveServer
) -> None:
    with database_session(live_server) as session:
        seeded = session.get(Debtor, live_server.seeded.debtor_id)
        assert seeded is not None
        model = ModelVersion(
            version="scorecard-drifted",
            institution_id=seeded.institution_id,
            family="scorecard",
            source="test",
            target="pays",
            positive_label="1",
            data_fingerprint="0" * 64,
            trained_by="test",
            trained_at=NIGHT,
            artifact_sha256="0" * 64,
            artifact_size=0,
        )
        session.add(model)
        session.flush()
        session.add(
            ScoringRun(
                institution_id=seeded.institution_id,
                model_version_id=model.id,
                model_version=model.version,
                as_of=date(2026, 12, 6),
                scored_at=NIGHT,
                accounts_scored=10,
                score_psi=0.8,
                status="completed",
            )
        )
        session.commit()
    log_in(page, live_server, "manager")
    alerts = page.locator("[data-testid=alerts]")
    expect(alerts).to_contain_text("scorecard-drifted")
    expect(alerts).to_contain_text("2026年12月6日")
    expect(alerts).not_to_contain_text("2026-12-06")


def test_an_agents_name_in_the_leaderboard_is_on_one_line(
    page: Page, live_server: LiveServer, case_id: int
) -> None:
    with database_session(live_server) as session:
        agent = session.execute(select(User).where(User.username == "agent")).scalar_one()
        agent.display_name = "演示催收员1"
        session.commit()
    log_in(page, live_server, "manager", next_path="/analytics/agents")
    name = page.locator("[data-testid=table-leaderboard] td.label-cell", has_text="演示催收员1")
    expect(name).to_be_visible()
    height, font = name.evaluate(
        "element => [element.getBoundingClientRect().height - parseFloat("
        "getComputedStyle(element).paddingTop) - parseFloat(getComputedStyle(element).paddingBottom),"
        " parseFloat(getComputedStyle(element).fontSize)]"
    )
    assert height < 2 * font, f"the name is broken over lines ({height} px at {font} px)"


def test_the_gate_badges_fit_the_contact_points_card_on_a_wide_screen(
    browser: Browser, live_server: LiveServer, case_id: int
) -> None:
    context = browser.new_context(
        locale="en",
        extra_http_headers={"Accept-Language": "en"},
        viewport={"width": 1366, "height": 900},
    )
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        log_in(page, live_server, "agent", next_path=f"/cases/{case_id}")
        expect(page.locator("[data-testid=badge-next]").first).to_be_visible()
        card = page.locator("[data-testid=case-contact-points]").locator("xpath=..")
        scroll, client = card.evaluate("element => [element.scrollWidth, element.clientWidth]")
        assert scroll <= client, f"the badges are cut off: {scroll} px in a {client} px card"
    finally:
        context.close()
