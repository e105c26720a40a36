"""Shared pieces of the browser tests: seeded credentials, the live server record, signing in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from playwright.sync_api import Page
from sqlalchemy.orm import Session

from recoup.db import make_engine

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


@contextmanager
def database_session(server: LiveServer) -> Iterator[Session]:
    """Open a session on the live server's database (for seeding and checking from tests)."""
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
