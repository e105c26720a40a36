"""Shared pieces of the browser tests: seeded credentials, the live server record, signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Correct-Horse-42"

DEBTOR_NAME = "张伟"
DEBTOR_NATIONAL_ID = "110101199003074477"
DEBTOR_PHONE = "13812345678"


@dataclass(frozen=True)
class Seeded:
    """What the test database holds: ids the tests open."""

    debtor_id: int
    account_id: int
    unassigned_debtor_id: int
    other_institution_debtor_id: int


@dataclass(frozen=True)
class LiveServer:
    """The running app and the data seeded into it."""

    url: str
    seeded: Seeded
    database_url: str


def log_in(page: Page, server: LiveServer, username: str, *, next_path: str = "/") -> None:
    """Sign in through the login form and wait for the page it leads to."""
    page.goto(f"{server.url}/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf"{re.escape(server.url)}{re.escape(next_path)}(\?.*)?$"))
