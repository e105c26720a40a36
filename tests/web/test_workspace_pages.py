"""In headless Chromium: an agent's full day in the workspace, in Chinese and English."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from recoup.cases import service as cases
from recoup.ingest.runner import run_import
from recoup.kit import clock
from recoup.models import Account, Institution, User
from recoup.models.cases import Case
from recoup.models.debtor import ContactPoint, Debtor
from recoup.portfolio import service as portfolio
from recoup.portfolio.schemas import PaymentInput, ReversalInput
from recoup.workbench import service as promises
from recoup.workspace import service as workspace
from tests.factories import certify, make_contact_point
from tests.web.support import LiveServer, database_session, log_in, screenshot

pytestmark = pytest.mark.browser

# 11:00 on a Monday in Shanghai: calling hours (the app's workspace clock is set to it).
DAYTIME = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
SECOND_PHONE = "13900001111"
SCREENS = Path("/tmp/recoup-workspace")


@pytest.fixture(autouse=True)
def _daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "utcnow", lambda: DAYTIME)


def _prepare(server: LiveServer, *, account_external_id: str | None = None) -> int:
    """Give the agent a debtor's live case (with two phones); return the case id.

    By default the seeded debtor's; ``account_external_id`` names another debtor's account.
    """
    with database_session(server) as session:
        agent = session.execute(select(User).where(User.username == "agent")).scalar_one()
        assert agent.institution_id is not None
        certify(session, agent)
        if account_external_id is None:
            account = session.get(Account, server.seeded.account_id)
        else:
            account = session.execute(
                select(Account).where(Account.external_id == account_external_id)
            ).scalar_one()
        assert account is not None
        debtor = account.debtor_id
        points = session.execute(select(ContactPoint).where(ContactPoint.debtor_id == debtor))
        if len(points.scalars().all()) < 2:
            owner = session.get(Debtor, debtor)
            assert owner is not None
            make_contact_point(session, owner, value=SECOND_PHONE)
        cases.sync_cases(session, institution_id=agent.institution_id)
        case = session.execute(
            select(Case).where(Case.debtor_id == debtor, Case.live_debtor_id.is_not(None))
        ).scalar_one()
        case.owner_id = agent.id
        case.priority = 1000
        session.commit()
        return case.id


def _extra_account(server: LiveServer, debtor_external_id: str) -> str:
    """The account external id of one of the seeded extra debtors."""
    with database_session(server) as session:
        found = session.execute(
            select(Account.external_id)
            .join(Debtor, Debtor.id == Account.debtor_id)
            .where(Debtor.external_id == debtor_external_id)
        ).scalar_one()
        return str(found)


def _pay(server: LiveServer, tmp_path: Path, amount: str) -> None:
    """A payment arrives through the payments import; the day's promise check runs."""
    with database_session(server) as session:
        account = session.get(Account, server.seeded.account_id)
        assert account is not None
        institution = session.get(Institution, account.institution_id)
        assert institution is not None
        code, external_id = institution.code, account.external_id
    paid_at = (clock.utcnow() - timedelta(minutes=1)).isoformat()
    csv = tmp_path / "payments.csv"
    csv.write_text(
        "external_id,account_external_id,amount,currency,paid_at,channel\n"
        f"PAY-DAY-1,{external_id},{amount},CNY,{paid_at},alipay\n",
        encoding="utf-8",
    )
    with database_session(server) as session:
        summary = run_import(
            session, institution_code=code, kind="payments", path=csv, actor="test"
        )
        assert summary.inserted == 1, summary
        institution = session.execute(
            select(Institution).where(Institution.code == code)
        ).scalar_one()
        promises.reconcile_promises(
            session, institution=institution, as_of=promises.local_today(institution), actor="test"
        )
        session.commit()


def test_an_agents_full_day(page: Page, live_server: LiveServer, tmp_path: Path) -> None:
    case_id = _prepare(live_server)
    SCREENS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "agent", next_path="/work")
    expect(page.locator("h1")).to_have_text("我的工作")
    expect(page.locator(".app-nav a[data-nav=work]")).to_have_text("我的工作")
    expect(page.locator(f"[data-testid=case-row][data-case='{case_id}']")).to_be_visible()

    # n takes the next case: the highest priority one the gate allows calling now.
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf"/cases/{case_id}\?next=1$"))
    expect(page.get_by_test_id("case-heading")).to_contain_text(f"案件 #{case_id}")
    first_phone = page.locator("[data-testid=contact-point]").first
    expect(first_phone.locator("[data-testid=badge-allowed][data-channel=call]")).to_contain_text(
        "现在可联系"
    )
    # No script approved in this bank yet: the panel names the situation and says so.
    expect(page.get_by_test_id("script-panel")).to_have_attribute("data-situation", "first_contact")
    expect(page.get_by_test_id("script-missing")).to_contain_text("暂无该语言的已审批话术")
    screenshot(page, SCREENS / "case-zh.png", title=f"案件 #{case_id}")

    # l goes to the form; a call with a promise is saved with Ctrl+Enter.
    page.keyboard.press("l")
    expect(page.get_by_test_id("log-outcome")).to_be_focused()
    page.select_option("[data-testid=log-outcome]", "promise_made")
    points = page.locator("[data-testid=log-point] option")
    phone_value = points.nth(1).get_attribute("value")
    assert phone_value
    page.select_option("[data-testid=log-point]", phone_value)
    page.fill("[data-testid=log-note]", "客户承诺周五前还款")
    page.fill("[data-testid=log-promise-amount]", "300.00")
    due = (clock.local_today("Asia/Shanghai") + timedelta(days=3)).isoformat()
    page.fill("[data-testid=log-promise-due]", due)
    page.get_by_test_id("log-note").press("Control+Enter")
    expect(page.locator(".flash-list")).to_contain_text("已保存：承诺还款")
    expect(page.get_by_test_id("case-state")).to_have_attribute("data-state", "promised")
    promise = page.locator("[data-testid=timeline-item][data-kind=promise]").first
    expect(promise.get_by_test_id("timeline-promise-status")).to_have_text("待履行")
    expect(page.get_by_test_id("timeline-note").first).to_have_text("客户承诺周五前还款")

    # The payment arrives; the promise shows kept on the timeline.
    _pay(live_server, tmp_path, "300.00")
    page.reload()
    expect(
        page.locator("[data-testid=timeline-item][data-kind=promise]").first.get_by_test_id(
            "timeline-promise-status"
        )
    ).to_have_text("已兑现")
    expect(page.locator("[data-testid=timeline-item][data-kind=payment]")).to_have_count(1)

    # A wrong number invalidates the number called.
    second = page.locator("[data-testid=contact-point]").nth(1)
    second_id = second.get_attribute("data-point")
    assert second_id
    page.select_option("[data-testid=log-outcome]", "wrong_number")
    page.select_option("[data-testid=log-point]", second_id)
    page.click("[data-testid=log-submit]")
    expect(page.locator(".flash-list")).to_contain_text("号码或地址错误")
    invalid = page.locator(f"[data-testid=contact-point][data-point='{second_id}']")
    expect(invalid).to_have_attribute("data-status", "invalid")
    expect(invalid.get_by_test_id("point-status")).to_have_text("无效")
    expect(invalid.locator("[data-testid^=badge]")).to_have_count(0)

    # The keyboard help is one "?" away and Esc closes it.
    page.locator("[data-testid=key-help] summary").click()
    expect(page.locator(".key-help-panel")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".key-help-panel")).to_be_hidden()
    screenshot(page, SCREENS / "case-zh-after.png", title=f"案件 #{case_id}")


def test_the_workspace_in_english(browser: Browser, live_server: LiveServer) -> None:
    case_id = _prepare(live_server, account_external_id=_extra_account(live_server, "EXTRA010"))
    context = browser.new_context(
        locale="en-US",
        extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
        viewport={"width": 1366, "height": 768},
    )
    try:
        page = context.new_page()
        log_in(page, live_server, "agent", next_path="/work")
        expect(page.locator("h1")).to_have_text("My work")
        screenshot(page, SCREENS / "work-en.png", title="My work")
        page.goto(f"{live_server.url}/cases/{case_id}")
        expect(page.get_by_test_id("log-form")).to_be_visible()
        expect(page.get_by_test_id("strategy-step")).to_contain_text("No strategy step yet")
        screenshot(page, SCREENS / "case-en.png", title=f"Case #{case_id}")
    finally:
        context.close()


def test_another_agents_case_is_not_found(page: Page, live_server: LiveServer) -> None:
    case_id = _prepare(live_server, account_external_id=_extra_account(live_server, "EXTRA011"))
    with database_session(live_server) as session:
        other = (
            session.execute(
                select(Case).where(Case.id != case_id, Case.live_debtor_id.is_not(None))
            )
            .scalars()
            .first()
        )
        assert other is not None
        other_id = other.id
    log_in(page, live_server, "agent")
    response = page.goto(f"{live_server.url}/cases/{other_id}")
    assert response is not None
    assert response.status == 404


def test_a_reversed_payment_is_struck_through_with_its_date_and_reason(
    page: Page, live_server: LiveServer
) -> None:
    account_external_id = _extra_account(live_server, "EXTRA012")
    case_id = _prepare(live_server, account_external_id=account_external_id)
    now = clock.utcnow().replace(second=0, microsecond=0)
    reversed_at = now - timedelta(hours=1)
    with database_session(live_server) as session:
        account = session.execute(
            select(Account).where(Account.external_id == account_external_id)
        ).scalar_one()
        institution = session.get(Institution, account.institution_id)
        assert institution is not None
        before = account.balance
        recorded = portfolio.record_payments(
            session,
            institution=institution,
            payments=[
                PaymentInput(
                    external_id=f"REV-{case_id}-{n}",
                    account_external_id=account_external_id,
                    amount=amount,
                    currency=account.currency,
                    paid_at=now - timedelta(hours=3 - n),
                )
                for n, amount in ((0, 20_000), (1, 5_000))
            ],
            actor="test",
        )
        assert [outcome.status for outcome in recorded] == ["applied", "applied"]
        (reversal,) = portfolio.reverse_payments(
            session,
            institution=institution,
            reversals=[
                ReversalInput(
                    external_id=f"REV-{case_id}-0", reversed_at=reversed_at, reason="支票退票"
                )
            ],
            actor="test",
        )
        assert reversal.status == "reversed"
        session.commit()
        session.refresh(account)
        # Only the payment that stands took money off the balance.
        assert account.balance == before - 5_000
        balance = account.balance

    log_in(page, live_server, "agent")
    page.goto(f"{live_server.url}/cases/{case_id}")
    payments = page.locator("[data-testid=timeline-item][data-kind=payment]")
    expect(payments).to_have_count(2)
    struck = page.locator("[data-testid=timeline-item][data-kind=payment][data-status=reversed]")
    expect(struck).to_have_count(1)
    expect(struck.get_by_test_id("timeline-payment-struck")).to_contain_text("200.00")
    local = reversed_at.astimezone(clock.zone("Asia/Shanghai"))
    expect(struck.get_by_test_id("timeline-payment-reversed")).to_contain_text(
        f"已冲正 {local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    )
    expect(struck.get_by_test_id("timeline-reversal-reason")).to_have_text("支票退票")
    standing = page.locator("[data-testid=timeline-item][data-kind=payment][data-status=received]")
    expect(standing).to_have_count(1)
    expect(standing).to_contain_text("50.00")
    # The case's own history names the reversal (the account's case took it at once).
    named = page.locator("[data-testid=timeline-item][data-kind=case]", has_text="还款被冲正")
    expect(named).to_have_count(1)
    expect(named).to_contain_text(f"payment REV-{case_id}-0 of 200.00 CNY reversed: 支票退票")
    expect(standing.get_by_test_id("timeline-payment-struck")).to_have_count(0)
    expect(standing.get_by_test_id("timeline-payment-reversed")).to_have_count(0)
    row = page.locator("tr", has_text=account_external_id)
    expect(row.get_by_test_id("account-balance")).to_contain_text(f"{balance / 100:,.2f}")
