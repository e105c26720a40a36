"""Shared pieces of the browser tests: seeded credentials, the live server record, signing in."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from recoup.db import make_engine, unit_of_work
from recoup.kit import jobs
from recoup.models.jobs import Job, JobStatus
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("RECOUP_TEST_CHROMIUM", "/usr/bin/chromium")
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


SIGN_IN_TIMEOUT_MS = 30_000


def log_in(page: Page, server: LiveServer, username: str, *, next_path: str = "/") -> None:
    """Sign in through the login form and wait for the page it leads to."""
    page.goto(f"{server.url}/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    # The page signing in leads to may be the first of its kind the server renders (slow on a
    # busy machine): wait for it with a longer allowance than the default, once, here.
    with page.expect_navigation(
        url=re.compile(rf"{re.escape(server.url)}{re.escape(next_path)}(\?.*)?$"),
        timeout=SIGN_IN_TIMEOUT_MS,
    ):
        page.click("button[type=submit]", no_wait_after=True)


@contextmanager
def database_session(server: LiveServer) -> Iterator[Session]:
    """Open a session on the live server's database (for seeding and checking from tests)."""
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def run_campaign_jobs() -> int:
    """Run the campaigns' queueing jobs (``outbox.queue_campaign``) waiting in the live server's
    database, as a worker would; return how many ran. Other jobs (the dispatcher) stay."""
    with unit_of_work() as session:
        waiting = session.scalars(
            select(Job.id).where(
                Job.name == "outbox.queue_campaign",
                Job.status.in_([JobStatus.pending, JobStatus.queued, JobStatus.retrying]),
            )
        ).all()
    for job_id in waiting:
        jobs.run_job(job_id)
    return len(waiting)


def require_chromium(path: str = CHROMIUM, *, in_ci: bool = IN_CI) -> None:
    """Skip the browser tests where Chromium is missing, but fail in CI, where they must run."""
    if Path(path).exists():
        return
    message = f"Chromium is not installed at {path}"
    if in_ci:
        pytest.fail(f"{message}: the browser tests are required in CI (set RECOUP_TEST_CHROMIUM)")
    pytest.skip(message)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def screenshot(
    page: Page, path: Path, *, title: str | re.Pattern[str], error: int | None = None
) -> None:
    """Save a full-page PNG of ``page`` once it shows the page meant.

    A screenshot of an error page is a fine PNG too, so first check the page's own title
    (``title`` before `` · Recoup``) and that it is no error page, or exactly the ``error``
    page expected.
    """
    own = title.pattern if isinstance(title, re.Pattern) else re.escape(title)
    expect(page).to_have_title(re.compile(rf"^{own} · [^·]+$"))
    if error is None:
        expect(page.locator(".error-page")).to_have_count(0)
    else:
        expect(page.get_by_test_id(f"error-{error}")).to_be_visible()
    page.screenshot(path=path, full_page=True)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
