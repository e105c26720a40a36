"""Helpers for identity, audit and API tests: users, tokens and a TestClient on the test session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request, Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from recoup.app import create_app
from recoup.db import get_session, settled
from recoup.identity import service
from recoup.identity.dependencies import CSRF_HEADER, SESSION_COOKIE, login_session
from recoup.models import Institution, User

PASSWORD = "Correct-horse-42"
_counter = itertools.count(1)


def make_user(
    session: Session,
    institution: Institution | None,
    *,
    role: str = "agent",
    username: str | None = None,
    password: str = PASSWORD,
) -> User:
    return service.create_user(
        session,
        username=username or f"{role}{next(_counter)}",
        role=role,
        institution_id=institution.id if institution else None,
        password=password,
        actor="test",
    )


def signed_in(client: TestClient, user: User) -> dict[str, str]:
    """Sign ``user`` in on the client's browser; return the CSRF header for its forms."""
    response = Response()
    csrf = login_session(response, user)
    cookie = response.headers["set-cookie"].split(f"{SESSION_COOKIE}=")[1].split(";")[0]
    client.cookies.set(SESSION_COOKIE, cookie)
    return {CSRF_HEADER: csrf}


def bearer(user: User) -> dict[str, str]:
    token, _expires = service.issue_access_token(user)
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def client_for(session: Session) -> Iterator[TestClient]:
    """A TestClient whose requests use the test's (rolled-back) session."""
    app = create_app()

    def _session(request: Request) -> Iterator[Session]:
        # Like the real unit of work: commit on success (a savepoint here), roll back on an
        # error or a refusal. The test's own setup is committed first so a rollback undoes
        # only the request.
        session.commit()
        with settled(session, request):
            yield session

    app.dependency_overrides[get_session] = _session
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: object, status: int) -> dict[str, object]:
    """Assert ``response`` is a problem+json with ``status`` and return its body."""
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    return dict(body)
