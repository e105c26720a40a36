"""A live Recoup server on a loopback port, a seeded SQLite database and headless Chromium."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from recoup import config, db
from recoup.app import create_app
from recoup.identity import service as identity
from recoup.identity.permissions import ROLES
from recoup.models import Base
from tests.factories import (
    give_to_agent,
    make_account,
    make_contact_point,
    make_debtor,
    make_institution,
)
from tests.web.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEBTOR_NAME,
    DEBTOR_NATIONAL_ID,
    DEBTOR_PHONE,
    PASSWORD,
    LiveServer,
    Seeded,
    require_chromium,
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seed() -> Seeded:
    with db.unit_of_work() as session:
        institution = make_institution(session, code="WEBBANK")
        other = make_institution(session, code="OTHERBANK")
        users = {
            role: identity.create_user(
                session,
                username=role.replace("_", "-"),
                role=role,
                institution_id=institution.id,
                password=PASSWORD,
                display_name=f"Test {role}",
                actor="test",
            )
            for role in ROLES
        }
        identity.create_user(
            session,
            username="other-manager",
            role="manager",
            institution_id=other.id,
            password=PASSWORD,
            actor="test",
        )
        debtor = make_debtor(session, institution, name=DEBTOR_NAME, national_id=DEBTOR_NATIONAL_ID)
        make_contact_point(session, debtor, value=DEBTOR_PHONE)
        account = make_account(
            session, debtor, principal=123_456, days_past_due=45, due_date=date(2026, 10, 14)
        )
        give_to_agent(session, account, users["agent"].id)
        for number in range(30):
            extra = make_debtor(
                session,
                institution,
                name=f"李{number}",
                national_id=None,
                external_id=f"EXTRA{number:03}",
            )
            make_account(session, extra, days_past_due=number * 7)
        unassigned = make_debtor(session, institution, name="王芳", national_id=None)
        stranger = make_debtor(session, other, name="赵六", national_id=None)
        session.flush()
        return Seeded(
            debtor_id=debtor.id,
            account_id=account.id,
            unassigned_debtor_id=unassigned.id,
            other_institution_debtor_id=stranger.id,
        )


_START_SECONDS = 120


def _thread_stacks() -> str:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"--- {names.get(ident, ident)}\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in sys._current_frames().items()
    )


@pytest.fixture(scope="module")
def live_server(
    _isolated_settings: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Start Recoup with uvicorn in a background thread against a fresh SQLite database."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}"
    previous = os.environ.get("RECOUP_DATABASE_URL")
    os.environ["RECOUP_DATABASE_URL"] = database_url
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    Base.metadata.create_all(db.get_engine())
    seeded = _seed()

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="recoup-live-server", daemon=True)
    thread.start()
    started = time.monotonic()
    # Starting takes about 3 s; a loaded CI machine has taken over 20.
    while not server.started:
        waited = time.monotonic() - started
        if waited > _START_SECONDS or not thread.is_alive():
            raise RuntimeError(
                f"the test server did not start in {waited:.0f} s "
                f"(its thread {'is alive' if thread.is_alive() else 'has ended'});"
                f" where every thread was:\n{_thread_stacks()}"
            )
        time.sleep(0.05)
    yield LiveServer(url=f"http://127.0.0.1:{port}", seeded=seeded, database_url=database_url)

    server.should_exit = True
    thread.join(timeout=10)
    db.get_engine().dispose()
    if previous is None:
        os.environ.pop("RECOUP_DATABASE_URL", None)
    else:
        os.environ["RECOUP_DATABASE_URL"] = previous
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    require_chromium()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) whose language is Chinese."""
    browser_context = browser.new_context(
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        viewport={"width": 1280, "height": 860},
    )
    browser_context.set_default_timeout(10_000)
    yield browser_context
    browser_context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
