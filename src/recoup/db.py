"""Engines, sessions and the one transaction boundary.

Services receive a ``Session`` and never commit; the caller that owns the unit of
work (an HTTP request, a CLI command, a job) commits once through ``unit_of_work``.

On SQLite a unit of work that may write begins ``IMMEDIATE``: it takes the single write
lock up front and so waits its turn (up to the busy timeout) behind other writers. A
deferred transaction that reads first and writes later cannot wait: when another writer
committed in between, SQLite refuses the upgrade at once with "database is locked".
Read-only units of work (GET requests, error pages) begin deferred and never block writers.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from recoup.config import get_settings

# The execution option naming how a SQLite transaction begins ("DEFERRED" or "IMMEDIATE").
BEGIN_OPTION = "recoup_sqlite_begin"
BUSY_TIMEOUT_SECONDS = 30
SQLITE_CACHE_KIB = 64 * 1024
# Every page read through the memory map stays in the process's resident set while the
# connection lives: a 4 GiB map let a 1M-account cycle's RSS grow by the whole database file
# (about 2 GB). 256 MiB keeps the hot pages (indexes, small tables) mapped and reads the rest
# through the page cache.
SQLITE_MMAP_BYTES = 256 * 1024**2


def make_engine(
    url: str, *, echo: bool = False, pool_size: int = 5, pool_timeout: float = 30
) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and real transactions.

    ``pool_size`` connections stay open, as many again may be opened under load, and a
    request for a connection beyond that waits ``pool_timeout`` seconds before failing.
    """
    pooling: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_timeout": pool_timeout,
    }
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            create_owner_only(Path(path))
        else:
            pooling = {}
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, **pooling
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, **pooling)


def create_owner_only(path: Path) -> None:
    """Create a new database file readable by its owner only (mode 0600).

    SQLite gives the ``-wal`` and ``-shm`` files the mode of the database file, so they
    follow; an existing file keeps the mode its operator chose.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; we issue BEGIN ourselves.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        # Reports and aggregates read millions of rows by index: a page cache of 64 MiB (the
        # default is 2 MiB) and reads through a memory map (bounded, above) keep most of them
        # off read() calls.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}")


@lru_cache
def get_engine() -> Engine:
    """Return the process-wide engine for the configured database."""
    settings = get_settings()
    return make_engine(
        settings.database_url,
        echo=settings.sql_echo,
        pool_size=settings.max_concurrent_requests,
        pool_timeout=settings.request_queue_seconds,
    )


def ping(engine: Engine | None = None) -> None:
    """Run ``SELECT 1`` on the configured database (raises when it does not answer)."""
    with (engine or get_engine()).connect() as connection:
        connection.execute(text("SELECT 1"))


def session_factory(engine: Engine | None = None, *, write: bool = True) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (default: the configured one).

    ``write=True`` sessions begin IMMEDIATE on SQLite so that concurrent writers queue.
    """
    bound = engine or get_engine()
    if write and bound.dialect.name == "sqlite":
        bound = bound.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
    return sessionmaker(bind=bound, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """Open a session, commit once on success, roll back on any error."""
    session = session_factory(engine, write=write)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITES_ON_GET = "__recoup_writes_on_get__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def writes_on_get(endpoint: Endpoint) -> Endpoint:
    """Mark a GET route that writes (e.g. audits a download), so its session may write."""
    setattr(endpoint, _WRITES_ON_GET, True)
    return endpoint


_KEEPS_REFUSALS = "__recoup_keeps_refusals__"
_REFUSED = "recoup_refused"


def keeps_refusals(endpoint: Endpoint) -> Endpoint:
    """Mark a route whose refusals still commit (a failed sign-in attempt must be kept)."""
    setattr(endpoint, _KEEPS_REFUSALS, True)
    return endpoint


def refuse(request: Request) -> None:
    """Roll this request's work back although it answers normally (e.g. an error redirect)."""
    if not getattr(request.scope.get("endpoint"), _KEEPS_REFUSALS, False):
        setattr(request.state, _REFUSED, True)


def refused(request: Request) -> bool:
    """Tell whether this request's work is to be rolled back although nothing was raised."""
    return bool(getattr(request.state, _REFUSED, False))


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed once if the request succeeds.

    The session rolls back on an exception, on a 4xx/5xx answer and on ``refuse(request)``;
    it commits otherwise, before the response is sent. A GET, HEAD or OPTIONS request reads
    (its session begins deferred) unless its route is marked ``writes_on_get``.
    """
    endpoint = request.scope.get("endpoint")
    write = request.method not in SAFE_METHODS or getattr(endpoint, _WRITES_ON_GET, False)
    with session_factory(write=write)() as session, settled(session, request):
        yield session


@contextmanager
def settled(session: Session, request: Request) -> Iterator[Session]:
    """End a request's work: commit it when it succeeded, roll it back on an error or a refusal."""
    try:
        yield session
        if refused(request):
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise


def worker_url(session: Session) -> str | None:
    """Return the URL a forked worker process opens the session's database by, or None when it
    cannot (an in-memory SQLite database, a server database other than the configured one) or
    processes cannot be forked."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    from sqlalchemy.engine import make_url

    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
    elif url != make_url(get_settings().database_url):
        # An engine set up beyond its URL (e.g. a schema chosen on connect): the URL alone
        # might open another database.
        return None
    return url.render_as_string(hide_password=False)


# How often the background checkpointer copies the log back (``checkpointing``), in seconds.
CHECKPOINT_EVERY_SECONDS = 0.25
# Held while the background checkpointer is inside SQLite: a fork waits for it (``_fork_guard``),
# so no child starts with one of SQLite's process-wide mutexes taken by a thread it lacks.
_CHECKPOINT_TURN = threading.Lock()
# The checkpointers' connections, referenced here until closed: a forked child (where their
# threads do not exist) never frees, and so never closes, one.
_CHECKPOINT_CONNECTIONS: set[Any] = set()


@lru_cache(maxsize=1)
def _fork_guard() -> None:
    """Make every later fork wait for the checkpointer's turn (registered once per process)."""
    os.register_at_fork(
        before=_CHECKPOINT_TURN.acquire,
        after_in_parent=_CHECKPOINT_TURN.release,
        after_in_child=_CHECKPOINT_TURN.release,
    )


@contextmanager
def checkpointing(engine: Engine, *, every: float = CHECKPOINT_EVERY_SECONDS) -> Iterator[None]:
    """While the block runs, copy SQLite's write-ahead log back into the database file from a
    background thread with its own connection (nothing on other databases).

    A commit that leaves the log over SQLite's threshold (1,000 pages) checkpoints it in the
    committing connection: a stage that wrote a million rows waits, after its last statement,
    while the log's pages are copied back and the file synced. Copied here as they are
    committed, on another core (``sqlite3`` lets go of the GIL while it works), most are
    already back when the commit looks, and a commit's own checkpoint finding this one at work
    leaves the rest to it. Passive: it never waits for readers or writers, nor blocks them.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    import sqlite3

    _fork_guard()
    connection = sqlite3.connect(url.database, timeout=0, check_same_thread=False)
    _CHECKPOINT_CONNECTIONS.add(connection)
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            with _CHECKPOINT_TURN, contextlib.suppress(sqlite3.Error):
                # Busy (another checkpoint at work): the next turn carries on.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    thread = threading.Thread(target=run, name="recoup-sqlite-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _CHECKPOINT_CONNECTIONS.discard(connection)
        connection.close()
