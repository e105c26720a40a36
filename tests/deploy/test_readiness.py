"""Liveness and readiness: ``/healthz`` says the process is up, ``/readyz`` that it can work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from recoup import config, db
from recoup.app import create_app
from recoup.kit import jobs
from tests.conftest import REDIS_URL

# Nothing listens on port 1 of the loopback: a connection there is refused at once.
DOWN = "127.0.0.1:1"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.delenv("RECOUP_JOBS_URL", raising=False)
    config.get_settings.cache_clear()
    jobs.reset()


def _client(monkeypatch: pytest.MonkeyPatch, **env: str) -> TestClient:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    jobs.reset()
    return TestClient(create_app(), raise_server_exceptions=False)


def test_ready_with_the_database_and_no_broker(
    live_database: str, settings_env: pytest.MonkeyPatch
) -> None:
    with _client(settings_env) as client:
        assert client.get("/healthz").status_code == 200
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "broker": "embedded"}}


@pytest.mark.usefixtures("redis_client")
def test_ready_checks_the_broker_when_one_is_configured(
    live_database: str, settings_env: pytest.MonkeyPatch
) -> None:
    with _client(settings_env, RECOUP_JOBS_URL=REDIS_URL) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_a_broker_that_does_not_answer_makes_the_process_not_ready(
    live_database: str, settings_env: pytest.MonkeyPatch
) -> None:
    with _client(settings_env, RECOUP_JOBS_URL=f"redis://{DOWN}/0") as client:
        assert client.get("/healthz").status_code == 200
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable")
    assert "broker: unreachable" in body["detail"]


def test_a_database_that_does_not_answer_makes_the_process_not_ready(
    settings_env: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql+psycopg://nobody@{DOWN}/recoup?connect_timeout=2"
    try:
        with _client(settings_env, RECOUP_DATABASE_URL=url) as client:
            assert client.get("/healthz").status_code == 200
            answer = client.get("/readyz")
    finally:
        settings_env.delenv("RECOUP_DATABASE_URL")
        config.get_settings.cache_clear()
        db.get_engine.cache_clear()
    assert answer.status_code == 503
    body = answer.json()
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["broker"] == "embedded"
