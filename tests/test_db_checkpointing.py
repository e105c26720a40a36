"""SQLite's write-ahead log copied back beside a long run (``db.checkpointing``).

The daily cycle commits hundreds of megabytes a day; a background thread checkpoints the log
while the stages run, so their commits do not wait for it. It must copy what is committed,
never block the writer, end with the block, and let the run fork worker processes safely.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from recoup import db
from recoup.db import checkpointing, make_engine


def _fill(engine: Engine, rows: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO t (payload) SELECT randomblob(200) FROM counter LIMIT :rows"),
            {"rows": rows},
        )


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as connection:
        connection.execute(text("PRAGMA wal_autocheckpoint=0"))  # this connection leaves it
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)"))
        connection.execute(
            text(
                "CREATE TABLE counter AS WITH RECURSIVE n(i) AS "
                "(SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 20000) SELECT i FROM n"
            )
        )
    return engine


def test_committed_pages_are_copied_back_while_the_block_runs(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.connect() as connection:
        # The writer's own checkpoints off: only the background one copies pages back.
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
    path = tmp_path / "log.db"
    _fill(engine, 20_000)
    time.sleep(0.2)
    # Committed, in the log only: the database file holds the schema's few pages.
    assert path.stat().st_size < 100_000
    with checkpointing(engine, every=0.01):
        _fill(engine, 20_000)
        deadline = time.monotonic() + 10
        while path.stat().st_size < 8_000_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Both fills' rows (200 bytes each) are back in the file.
        assert path.stat().st_size >= 8_000_000
        assert [thread.name for thread in threading.enumerate()].count(
            "recoup-sqlite-checkpoint"
        ) == 1
    assert "recoup-sqlite-checkpoint" not in [thread.name for thread in threading.enumerate()]
    assert set() == db._CHECKPOINT_CONNECTIONS
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 40_000
    engine.dispose()


def test_a_fork_waits_for_a_checkpoint_and_the_child_reads(tmp_path: Path) -> None:
    """A child forked while the thread checkpoints starts with no SQLite lock held by a thread
    it lacks: it opens the database and reads (each of many forks, under steady writes)."""
    engine = _engine(tmp_path)
    path = tmp_path / "log.db"
    with checkpointing(engine, every=0.001):
        for _round in range(20):
            _fill(engine, 2_000)
            child = os.fork()
            if child == 0:
                try:
                    with sqlite3.connect(path, timeout=5) as connection:
                        count = connection.execute("SELECT count(*) FROM t").fetchone()[0]
                    os._exit(0 if count > 0 else 3)
                except BaseException:
                    os._exit(4)
            deadline = time.monotonic() + 20
            while True:
                done, status = os.waitpid(child, os.WNOHANG)
                if done:
                    break
                assert time.monotonic() < deadline, "the forked child hung"
                time.sleep(0.01)
            assert os.waitstatus_to_exitcode(status) == 0
    engine.dispose()


def test_nothing_runs_beside_a_database_without_a_file() -> None:
    engine = create_engine("sqlite://")
    before = threading.active_count()
    with checkpointing(engine):
        assert threading.active_count() == before
    engine.dispose()
