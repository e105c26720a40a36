"""Import pages without a browser: how a run's status reads."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from recoup.enums import ImportKind
from recoup.identity.dependencies import SESSION_COOKIE, login_session
from recoup.models import User
from tests.factories import make_institution
from tests.identity.helpers import client_for, make_user
from tests.ingest.conftest import running_import

ENGLISH = {"Accept-Language": "en"}


def _sign_in(client: TestClient, user: User) -> None:
    response = Response()
    login_session(response, user)
    match = re.search(rf"{SESSION_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match
    client.cookies.set(SESSION_COOKIE, match.group(1))


def _status(page: str) -> list[str]:
    return re.findall(r'data-testid="run-status">([^<]+)<', page)


class TestRunStatus:
    def test_a_run_whose_process_fell_silent_shows_as_interrupted(self, session: Session) -> None:
        institution = make_institution(session)
        silent = running_import(
            session, institution, silent_for=timedelta(minutes=30), kind=ImportKind.accounts
        ).id
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            _sign_in(client, manager)
            runs = client.get("/imports", headers=ENGLISH)
            run = client.get(f"/imports/{silent}", headers=ENGLISH)
        assert runs.status_code == 200
        assert _status(runs.text) == ["Interrupted"]
        assert run.status_code == 200
        assert _status(run.text) == ["Interrupted"]
        assert "The importing process stopped without finishing" in run.text

    def test_a_run_with_a_recent_heartbeat_shows_as_running(self, session: Session) -> None:
        institution = make_institution(session)
        busy = running_import(
            session, institution, silent_for=timedelta(seconds=5), kind=ImportKind.accounts
        ).id
        manager = make_user(session, institution, role="manager")
        with client_for(session) as client:
            _sign_in(client, manager)
            run = client.get(f"/imports/{busy}", headers=ENGLISH)
        assert run.status_code == 200
        assert _status(run.text) == ["Running"]
        assert "stopped without finishing" not in run.text
