"""The transaction boundary on SQLite: writers queue for the lock instead of failing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from recoup import db
from recoup.db import make_engine, unit_of_work, writes_on_get
from recoup.deps import SessionDep


@pytest.fixture
def counter_db(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'counter.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    return engine


def _read_then_write(engine: Engine, *, write: bool, errors: list[BaseException]) -> None:
    try:
        with unit_of_work(engine, write=write) as session:
            seen = session.execute(text("SELECT n FROM counter")).scalar_one()
            time.sleep(0.3)  # another writer commits meanwhile
            session.execute(text("UPDATE counter SET n = :n"), {"n": seen + 1})
    except BaseException as error:
        errors.append(error)


def _race(engine: Engine, *, write: bool) -> list[BaseException]:
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_read_then_write, args=(engine,), kwargs={"write": write, "errors": errors}
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)
    return errors


class TestSqliteWriters:
    def test_write_units_of_work_wait_their_turn_and_lose_no_update(
        self, counter_db: Engine
    ) -> None:
        assert _race(counter_db, write=True) == []
        with counter_db.connect() as connection:
            assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 2

    def test_a_deferred_read_then_write_fails_at_once_which_is_why_writers_begin_immediate(
        self, counter_db: Engine
    ) -> None:
        started = time.perf_counter()
        errors = _race(counter_db, write=False)
        assert len(errors) == 1
        assert isinstance(errors[0], OperationalError)
        assert "locked" in str(errors[0])
        assert time.perf_counter() - started < 5  # not the 30 s busy timeout: SQLite won't wait

    def test_a_reader_does_not_block_a_writer(self, counter_db: Engine) -> None:
        with unit_of_work(counter_db, write=False) as reader:
            reader.execute(text("SELECT n FROM counter")).scalar_one()
            started = time.perf_counter()
            with unit_of_work(counter_db) as writer:
                writer.execute(text("UPDATE counter SET n = 5"))
            assert time.perf_counter() - started < 1


def _holds_write_lock(engine: Engine) -> bool:
    probe = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()
    return False


class TestRequestSessions:
    """A request's session takes the write lock only when the request may write."""

    @pytest.fixture
    def app(self, counter_db: Engine, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
        monkeypatch.setattr(db, "get_engine", lambda: counter_db)
        app = FastAPI()

        @app.get("/read")
        def read(session: SessionDep) -> bool:
            session.execute(text("SELECT n FROM counter")).scalar_one()
            return _holds_write_lock(counter_db)

        @app.get("/download")
        @writes_on_get
        def download(session: SessionDep) -> bool:
            session.execute(text("SELECT n FROM counter")).scalar_one()
            return _holds_write_lock(counter_db)

        @app.post("/write")
        def write(session: SessionDep) -> bool:
            session.execute(text("SELECT n FROM counter")).scalar_one()
            return _holds_write_lock(counter_db)

        return app

    def test_get_reads_without_the_lock_and_writers_hold_it(self, app: FastAPI) -> None:
        with TestClient(app) as client:
            assert client.get("/read").json() is False
            assert client.get("/download").json() is True
            assert client.post("/write").json() is True
