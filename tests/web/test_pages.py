"""The web shell in a real headless Chromium: sign-in, navigation by role, refusals, language, PII."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.db import make_engine
from recoup.models import AuditEvent
from tests.web.support import (
    DEBTOR_NAME,
    DEBTOR_NATIONAL_ID,
    DEBTOR_PHONE,
    PASSWORD,
    LiveServer,
    log_in,
    screenshot,
)

pytestmark = pytest.mark.browser

EXPECTED_NAVIGATION = {
    "admin": ["dashboard", "debtors", "accounts", "performance", "imports", "audit", "admin"],
    "manager": [
        "dashboard",
        "work",
        "debtors",
        "accounts",
        "performance",
        "allocation",
        "cycle",
        "dialer",
        "visits",
        "letters",
        "strategies",
        "scripts",
        "imports",
        "outbox",
        "compliance",
        "models",
    ],
    "team_lead": [
        "dashboard",
        "work",
        "debtors",
        "accounts",
        "performance",
        "allocation",
        "cycle",
        "dialer",
        "visits",
        "letters",
        "strategies",
        "scripts",
        "imports",
        "outbox",
        "compliance",
    ],
    "agent": ["dashboard", "work", "debtors", "accounts", "dialer", "visits", "letters", "scripts"],
    "compliance_officer": [
        "dashboard",
        "debtors",
        "accounts",
        "cycle",
        "strategies",
        "scripts",
        "outbox",
        "compliance",
    ],
    "auditor": [
        "dashboard",
        "debtors",
        "accounts",
        "performance",
        "cycle",
        "strategies",
        "scripts",
        "imports",
        "outbox",
        "compliance",
        "models",
        "audit",
    ],
    "data_scientist": [
        "dashboard",
        "performance",
        "cycle",
        "strategies",
        "imports",
        "outbox",
        "models",
    ],
}


def _username(role: str) -> str:
    return role.replace("_", "-")


def _navigation(page: Page) -> list[str]:
    return [
        str(link.get_attribute("data-nav")) for link in page.locator(".app-nav a[data-nav]").all()
    ]


def _audit_events(server: LiveServer, action: str) -> list[AuditEvent]:
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session:
            statement = select(AuditEvent).where(AuditEvent.action == action)
            return list(session.scalars(statement.order_by(AuditEvent.id)))
    finally:
        engine.dispose()


@pytest.fixture
def english_context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser whose preferred language is English."""
    browser_context = browser.new_context(
        locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"}
    )
    browser_context.set_default_timeout(10_000)
    yield browser_context
    browser_context.close()


class TestNavigationByRole:
    @pytest.mark.parametrize("role", list(EXPECTED_NAVIGATION))
    def test_each_role_sees_only_the_sections_it_may_open(
        self, page: Page, live_server: LiveServer, role: str
    ) -> None:
        log_in(page, live_server, _username(role))
        assert _navigation(page) == EXPECTED_NAVIGATION[role]
        page.click("[data-testid=user-menu] summary")
        expect(page.locator("[data-testid=user-role]")).to_be_visible()
        for entry in EXPECTED_NAVIGATION[role]:
            link = page.locator(f".app-nav a[data-nav={entry}]")
            response = page.goto(f"{live_server.url}{link.get_attribute('href')}")
            assert response is not None
            assert response.status == 200, entry


class TestRefusals:
    @pytest.mark.parametrize(
        ("role", "path"),
        [
            ("agent", "/audit"),
            ("agent", "/admin/users"),
            ("manager", "/audit"),
            ("auditor", "/admin/apikeys"),
            ("compliance_officer", "/models"),
            ("data_scientist", "/debtors"),
        ],
    )
    def test_a_page_of_another_role_shows_the_403_page(
        self, page: Page, live_server: LiveServer, role: str, path: str
    ) -> None:
        log_in(page, live_server, _username(role))
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None
        assert response.status == 403
        expect(page.locator("[data-testid=error-403]")).to_contain_text("无权访问")
        assert _navigation(page) == EXPECTED_NAVIGATION[role]

    def test_anonymous_visitors_are_sent_to_login_and_back(
        self, page: Page, live_server: LiveServer
    ) -> None:
        page.goto(f"{live_server.url}/debtors?q=13800000000")
        assert "/login?next=" in page.url
        page.fill("#username", "manager")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/debtors?q=13800000000")
        expect(page.locator("#q")).to_have_value("13800000000")

    def test_another_institutions_debtor_is_not_found(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "manager")
        stranger = live_server.seeded.other_institution_debtor_id
        response = page.goto(f"{live_server.url}/debtors/{stranger}")
        assert response is not None
        assert response.status == 404
        expect(page.locator("[data-testid=error-404]")).to_be_visible()
        assert "赵" not in page.content()

    def test_an_agent_sees_only_debtors_of_assigned_accounts(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "agent")
        page.goto(f"{live_server.url}/debtors")
        expect(page.locator("[data-testid=debtor-table] tbody tr")).to_have_count(1)
        response = page.goto(f"{live_server.url}/debtors/{live_server.seeded.unassigned_debtor_id}")
        assert response is not None
        assert response.status == 404

    def test_the_accounts_list_names_the_agent_only_to_those_who_see_several(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "agent", next_path="/accounts")
        table = page.locator("[data-testid=account-table]")
        expect(table.locator("tbody tr").first).to_be_visible()
        expect(table.locator("[data-col=agent]")).to_have_count(0)
        expect(table.locator("thead")).not_to_contain_text("催收员")
        page.context.clear_cookies()
        log_in(page, live_server, "manager", next_path="/accounts")
        expect(table.locator("thead")).to_contain_text("催收员")
        expect(table.locator("tbody tr [data-col=agent]").first).to_be_visible()

    def test_vendored_scripts_are_served_by_the_app(
        self, page: Page, live_server: LiveServer
    ) -> None:
        for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/echarts/echarts.min.js"):
            response = page.request.get(f"{live_server.url}{path}")
            assert response.status == 200, path
            assert "javascript" in response.headers["content-type"]

    def test_unknown_pages_show_the_404_page(self, page: Page, live_server: LiveServer) -> None:
        log_in(page, live_server, "auditor")
        response = page.goto(f"{live_server.url}/no-such-page")
        assert response is not None
        assert response.status == 404
        expect(page.locator("[data-testid=error-404]")).to_be_visible()


class TestSignIn:
    def test_wrong_password_and_unknown_user_read_the_same(
        self, page: Page, live_server: LiveServer
    ) -> None:
        messages = []
        for username in ("manager", "nobody-here"):
            page.goto(f"{live_server.url}/login")
            page.fill("#username", username)
            page.fill("#password", "not-the-password-1")
            page.click("button[type=submit]")
            messages.append(page.locator("[data-testid=login-error]").inner_text())
        assert messages[0] == messages[1] == "用户名或密码错误。"

    def test_repeated_failures_lock_sign_in(self, page: Page, live_server: LiveServer) -> None:
        page.goto(f"{live_server.url}/login")
        for _attempt in range(6):
            page.fill("#username", "locked-out-user")
            page.fill("#password", "not-the-password-1")
            page.click("button[type=submit]")
        expect(page.locator("[data-testid=login-error]")).to_contain_text("已暂时锁定")

    def test_logout_ends_the_session(self, page: Page, live_server: LiveServer) -> None:
        log_in(page, live_server, "manager")
        page.click("[data-testid=user-menu] summary")
        page.click("[data-testid=logout]")
        page.wait_for_url(f"{live_server.url}/login")
        expect(page.locator(".flash-list")).to_contain_text("您已安全退出")
        page.goto(f"{live_server.url}/debtors")
        assert "/login?next=/debtors" in page.url
        assert any(event.actor == "manager" for event in _audit_events(live_server, "auth.logout"))


class TestLanguage:
    def test_switching_between_chinese_and_english(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "manager")
        expect(page.locator(".app-nav a[data-nav=debtors]")).to_have_text("债务人")
        page.click("[data-testid=user-menu] summary")
        page.click("[data-testid=user-menu] a[data-locale=en]")
        expect(page.locator(".app-nav a[data-nav=debtors]")).to_have_text("Debtors")
        assert page.locator("html").get_attribute("lang") == "en"
        page.goto(f"{live_server.url}/accounts/{live_server.seeded.account_id}")
        expect(page.locator("[data-testid=account-due-date]")).to_have_text("Oct 14, 2026")
        page.click("[data-testid=user-menu] summary")
        page.click("[data-testid=user-menu] a[data-locale=zh-CN]")
        expect(page.locator("[data-testid=account-due-date]")).to_have_text("2026年10月14日")
        expect(page.locator("[data-testid=account-balance]")).to_have_text("¥1,884.56")

    def test_accept_language_english_gives_english(
        self, english_context: BrowserContext, live_server: LiveServer
    ) -> None:
        page = english_context.new_page()
        page.goto(f"{live_server.url}/login")
        expect(page.locator("h1")).to_have_text("Sign in to your account")
        page.click("[data-locale=zh-CN]")
        expect(page.locator("h1")).to_have_text("登录您的账户")
        page.goto(f"{live_server.url}/login")
        expect(page.locator("h1")).to_have_text("登录您的账户")


class TestPersonalData:
    def test_debtor_pages_show_masked_values_only(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "manager")
        page.goto(f"{live_server.url}/debtors/{live_server.seeded.debtor_id}")
        expect(page.locator("[data-testid=field-name]")).to_have_text("张*")
        expect(page.locator("[data-testid=field-national-id]")).to_have_text("110101********4477")
        expect(page.locator("[data-testid=contact-value]")).to_have_text("138****5678")
        html = page.content()
        for secret in (DEBTOR_NAME, DEBTOR_NATIONAL_ID, DEBTOR_PHONE):
            assert secret not in html
        page.goto(f"{live_server.url}/debtors")
        assert DEBTOR_NATIONAL_ID not in page.content()

    def test_search_by_phone_finds_the_debtor(self, page: Page, live_server: LiveServer) -> None:
        log_in(page, live_server, "manager")
        page.goto(f"{live_server.url}/debtors")
        page.fill("#q", DEBTOR_PHONE)
        page.click("form[role=search] button[type=submit]")
        rows = page.locator("[data-testid=debtor-table] tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("[data-testid=debtor-name]")).to_have_text("张*")
        page.fill("#q", "13900000000")
        page.click("form[role=search] button[type=submit]")
        expect(page.locator("[data-testid=empty-state]")).to_be_visible()

    def test_reveal_needs_a_reason_then_shows_the_values_and_is_audited(
        self, page: Page, live_server: LiveServer
    ) -> None:
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        log_in(page, live_server, "agent")
        page.goto(f"{live_server.url}/debtors/{live_server.seeded.debtor_id}")
        page.click("[data-testid=reveal-submit]")
        expect(page.locator("[data-testid=reveal-error]")).to_contain_text("请填写查看原因")
        expect(page.locator("[data-testid=field-name]")).to_have_text("张*")
        reason = "debtor called back to confirm identity"
        page.fill("#reveal-reason", reason)
        page.click("[data-testid=reveal-submit]")
        expect(page.locator("[data-testid=field-name]")).to_have_text(DEBTOR_NAME)
        expect(page.locator("[data-testid=field-national-id]")).to_have_text(DEBTOR_NATIONAL_ID)
        expect(page.locator("[data-testid=contact-value]")).to_have_text(DEBTOR_PHONE)
        assert page.url.endswith(f"/debtors/{live_server.seeded.debtor_id}")
        assert not [text for text in console_errors if "Content Security Policy" in text]
        events = _audit_events(live_server, "pii.reveal")
        assert any(
            event.actor == "agent" and event.details.get("reason") == reason for event in events
        )

    def test_an_ended_session_sends_the_whole_page_to_login(
        self, page: Page, context: BrowserContext, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "agent")
        debtor_path = f"/debtors/{live_server.seeded.debtor_id}"
        page.goto(f"{live_server.url}{debtor_path}")
        context.clear_cookies()
        page.fill("#reveal-reason", "checking after the session ended")
        page.click("[data-testid=reveal-submit]")
        page.wait_for_url(f"{live_server.url}/login?next={debtor_path}")
        expect(page.locator("#username")).to_be_visible()

    def test_reveal_works_without_javascript(
        self, browser: Browser, live_server: LiveServer
    ) -> None:
        plain = browser.new_context(java_script_enabled=False, locale="zh-CN")
        try:
            page = plain.new_page()
            log_in(page, live_server, "compliance-officer")
            page.goto(f"{live_server.url}/debtors/{live_server.seeded.debtor_id}")
            page.fill("#reveal-reason", "complaint investigation 2026-118")
            page.click("[data-testid=reveal-submit]")
            expect(page.locator("[data-testid=field-name]")).to_have_text(DEBTOR_NAME)
            expect(page.locator(".app-nav")).to_be_visible()
        finally:
            plain.close()

    def test_a_role_without_reveal_gets_no_reveal_form(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "auditor")
        page.goto(f"{live_server.url}/debtors/{live_server.seeded.debtor_id}")
        expect(page.locator("[data-testid=reveal-form]")).to_have_count(0)
        expect(page.locator("[data-testid=field-name]")).to_have_text("张*")


class TestLists:
    def test_debtor_list_pages(self, page: Page, live_server: LiveServer) -> None:
        log_in(page, live_server, "manager")
        page.goto(f"{live_server.url}/debtors")
        rows = page.locator("[data-testid=debtor-table] tbody tr")
        expect(rows).to_have_count(25)
        page.click("[data-testid=pagination] a[rel=next]")
        page.wait_for_url(re.compile(r".*/debtors\?page=2$"))
        expect(rows).to_have_count(7)

    def test_audit_trail_filters_by_action(self, page: Page, live_server: LiveServer) -> None:
        log_in(page, live_server, "auditor")
        page.goto(f"{live_server.url}/audit")
        expect(page.locator("[data-testid=audit-table]")).to_be_visible()
        page.fill("#action", "auth.login")
        page.fill("#actor", "auditor")
        page.click("form[role=search] button[type=submit]")
        actions = page.locator("[data-testid=audit-table] tbody tr td:nth-child(4)")
        expect(actions.first).to_have_text("登录")
        assert set(actions.all_inner_texts()) == {"登录"}
        codes = actions.locator("[data-action]").evaluate_all(
            "cells => cells.map(cell => cell.dataset.action)"
        )
        assert set(codes) == {"auth.login"}


class TestAdministration:
    def test_admin_creates_a_user(self, page: Page, live_server: LiveServer) -> None:
        log_in(page, live_server, "admin")
        page.goto(f"{live_server.url}/admin/users")
        page.fill("#new-username", "new-agent")
        page.fill("#new-display-name", "新来的催收员")
        page.select_option("#new-role", "agent")
        page.fill("#new-password", "aaaaaaaaaaaaaaaa")
        page.click("#create-user button[type=submit]")
        expect(page.locator("[data-testid=form-error]")).to_contain_text("one kind of character")
        expect(page.locator("#new-username")).to_have_value("new-agent")
        page.fill("#new-password", "A-much-better-passphrase-9")
        page.click("#create-user button[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/users")
        expect(page.locator(".flash-list")).to_contain_text("new-agent")
        expect(page.locator("[data-testid=user-table]")).to_contain_text("新来的催收员")

    def test_admin_creates_a_key_sees_it_once_and_revokes_it(
        self, page: Page, live_server: LiveServer
    ) -> None:
        log_in(page, live_server, "admin")
        page.goto(f"{live_server.url}/admin/apikeys")
        page.fill("#key-name", "core banking feed")
        page.check("input[name=scopes][value='payments:write']")
        page.click("form[action='/admin/apikeys'] button[type=submit]")
        secret = page.locator("[data-testid=api-key-secret]").inner_text()
        assert secret.startswith("rk_")
        page.goto(f"{live_server.url}/admin/apikeys")
        assert secret not in page.content()
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("[data-testid=apikey-table] button:has-text('吊销')")
        page.wait_for_url(f"{live_server.url}/admin/apikeys")
        expect(page.locator(".flash-list")).to_contain_text("core banking feed")
        expect(page.locator("[data-testid=apikey-table]")).to_contain_text("已吊销")


class TestScreenshots:
    """Pages a person looks at; saved under $RECOUP_SCREENSHOT_DIR (default: a temporary folder)."""

    def test_key_pages_render_for_a_look(
        self, page: Page, live_server: LiveServer, tmp_path: Path
    ) -> None:
        folder = Path(os.environ.get("RECOUP_SCREENSHOT_DIR") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        page.goto(f"{live_server.url}/login")
        screenshot(page, folder / "login.png", title="登录")
        log_in(page, live_server, "agent")
        page.goto(f"{live_server.url}/debtors/{live_server.seeded.debtor_id}")
        page.fill("#reveal-reason", "confirming identity on a call")
        page.click("[data-testid=reveal-submit]")
        expect(page.locator("[data-testid=pii-revealed-note]")).to_be_visible()
        screenshot(page, folder / "debtor-revealed.png", title=re.compile(r"\S+ · 债务人"))
        page.goto(f"{live_server.url}/audit")
        screenshot(page, folder / "forbidden.png", title="无权访问", error=403)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}/lang?locale=en&next=/accounts")
        screenshot(page, folder / "accounts-en-mobile.png", title="Accounts")
        page.set_viewport_size({"width": 1280, "height": 860})
        page.context.clear_cookies()
        log_in(page, live_server, "admin", next_path="/admin/apikeys")
        page.goto(f"{live_server.url}/lang?locale=en&next=/admin/apikeys")
        page.fill("#key-name", "CRM contact sync")
        page.check("input[name=scopes][value='contacts:write']")
        page.click("form[action='/admin/apikeys'] button[type=submit]")
        screenshot(page, folder / "apikeys-en.png", title="API keys")
        page.goto(f"{live_server.url}/audit")
        screenshot(page, folder / "audit-en.png", title="Audit trail")
