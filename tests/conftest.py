"""Test fixtures: real databases (SQLite always, PostgreSQL when reachable — required in CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
import time_machine
from hypothesis import settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from recoup import config
from recoup.db import make_engine
from recoup.kit import crypto
from recoup.models import Base

POSTGRES_URL = os.environ.get(
    "RECOUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The suite runs in several processes (pytest-xdist sets PYTEST_XDIST_WORKER to gw0, gw1 …).
# Tests that flush a Redis database get one of their own per process.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and "RECOUP_TEST_REDIS_URL" not in os.environ:
    os.environ["RECOUP_TEST_REDIS_URL"] = f"redis://127.0.0.1:6379/{15 - int(_WORKER[2:]) % 8}"
REDIS_URL = os.environ.get("RECOUP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RATE_LIMITS = {
    "RECOUP_API_KEY_REQUESTS_PER_MINUTE": "1000000",
    "RECOUP_ANONYMOUS_REQUESTS_PER_MINUTE": "1000000",
    "RECOUP_USER_REQUESTS_PER_MINUTE": "1000000",
}

# RECOUP_TEST_NOW=2027-01-01T10:00:00+08:00 runs the suite as if it were then: the clock of
# this process (the tests, the app they drive, its threads) starts there and ticks on. See
# "Running the tests on another day" in docs/architecture.md.
TEST_NOW = os.environ.get("RECOUP_TEST_NOW", "").strip()


def _test_now() -> datetime | None:
    if not TEST_NOW:
        return None
    try:
        moment = datetime.fromisoformat(TEST_NOW)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise pytest.UsageError(
            f"RECOUP_TEST_NOW={TEST_NOW!r} is not a moment with a time zone offset; "
            "give one like 2027-01-01T10:00:00+08:00"
        )
    return moment


def pytest_configure(config: pytest.Config) -> None:
    moment = _test_now()
    if moment is not None:
        # Started before collection (modules that take a date when imported see it too) and
        # kept for the whole process.
        time_machine.travel(moment, tick=True).start()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"clock: running as if at {TEST_NOW} (RECOUP_TEST_NOW)"] if TEST_NOW else []


# Property tests check what holds, not how fast: on a busy CI machine a per-example deadline
# only makes them flaky.
settings.register_profile("recoup", deadline=None, print_blob=True)
settings.load_profile("recoup")


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point RECOUP_DATA_DIR at a temporary folder and use a fresh key ring."""
    data_dir = tmp_path_factory.mktemp("recoup-data")
    previous = {
        k: os.environ.get(k)
        for k in (
            "RECOUP_DATA_DIR",
            "RECOUP_DATABASE_URL",
            "RECOUP_KEYRING_FILE",
            *RATE_LIMITS,
        )
    }
    os.environ["RECOUP_DATA_DIR"] = str(data_dir)
    # Fuzzing and load tests send far more than an integration would in a minute; the rate
    # limits' own tests (tests/identity/test_rate_limits.py) set small ones.
    os.environ.update(RATE_LIMITS)
    os.environ.pop("RECOUP_DATABASE_URL", None)
    os.environ.pop("RECOUP_KEYRING_FILE", None)
    config.get_settings.cache_clear()
    crypto.set_keyring(crypto.KeyRing.generate())
    yield data_dir
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    config.get_settings.cache_clear()


def _postgres_engine(schema: str) -> Engine | None:
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        engine.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {POSTGRES_URL}: {error}")
        return None
    engine.dispose()
    return make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A connected client of the tests' Redis (``REDIS_URL``); the test is skipped when none
    answers, and fails in CI, where Redis is required."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} (required in CI)")
    yield client
    client.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated-schema database engine per backend for the whole run."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        engine = make_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    schema = f"recoup_test_{uuid.uuid4().hex[:12]}"
    engine = _postgres_engine(schema)
    if engine is None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (required in CI)")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()
    cleanup = make_engine(POSTGRES_URL)
    with cleanup.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    cleanup.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test; commits become savepoints."""
    connection = engine.connect()
    transaction = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def backend(engine: Engine) -> str:
    """The name of the database backend under test."""
    return engine.dialect.name


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite database (schema created) that CLI commands under test will use."""
    from recoup.db import get_engine

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RECOUP_DATABASE_URL", url)
    config.get_settings.cache_clear()
    get_engine.cache_clear()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    get_engine().dispose()
    get_engine.cache_clear()
    monkeypatch.delenv("RECOUP_DATABASE_URL")
    config.get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def live_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh database that ``unit_of_work()`` and the app use, committing for real."""
    from recoup.db import get_engine

    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'live.db'}"
    else:
        schema = f"recoup_live_{uuid.uuid4().hex[:12]}"
        if _postgres_engine(schema) is None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (required in CI)")
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("RECOUP_DATABASE_URL", url)
    config.get_settings.cache_clear()
    get_engine.cache_clear()
    Base.metadata.create_all(get_engine())
    yield url
    get_engine().dispose()
    get_engine.cache_clear()
    monkeypatch.delenv("RECOUP_DATABASE_URL")
    config.get_settings.cache_clear()
    if schema is not None:
        cleanup = make_engine(POSTGRES_URL)
        with cleanup.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        cleanup.dispose()


@pytest.fixture
def memory_jobs(live_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A live database (``live_database``) with background jobs kept in memory, run by hand."""
    from recoup.kit import jobs

    monkeypatch.setenv("RECOUP_JOBS_URL", "memory")
    config.get_settings.cache_clear()
    jobs.reset()
    yield live_database
    jobs.reset()


@pytest.fixture
def private_webhook_targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let webhooks reach private and loopback addresses, as an on-premise operator would:
    the tests' receivers listen on 127.0.0.1, which the default policy refuses."""
    monkeypatch.setenv("RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    config.get_settings.cache_clear()
    yield
    monkeypatch.delenv("RECOUP_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    config.get_settings.cache_clear()
