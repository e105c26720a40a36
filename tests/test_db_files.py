"""A new SQLite database, with its -wal and -shm files, is readable by its owner only."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from recoup.db import make_engine


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual 022 umask, under which files are created world-readable unless asked not to."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
class TestNewSqliteFiles:
    def test_database_wal_and_shm_are_owner_only(self, tmp_path: Path) -> None:
        folder = tmp_path / "data"
        database = folder / "recoup.db"
        engine = make_engine(f"sqlite:///{database}")
        try:
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE t (x INTEGER)"))
                connection.execute(text("INSERT INTO t VALUES (1)"))
                files = {path.name: _mode(path) for path in folder.iterdir()}
        finally:
            engine.dispose()
        assert files == {"recoup.db": 0o600, "recoup.db-wal": 0o600, "recoup.db-shm": 0o600}
        assert _mode(folder) == 0o700

    def test_an_existing_database_keeps_its_mode_and_contents(self, tmp_path: Path) -> None:
        database = tmp_path / "recoup.db"
        first = make_engine(f"sqlite:///{database}")
        with first.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (7)"))
        first.dispose()
        database.chmod(0o640)
        again = make_engine(f"sqlite:///{database}")
        with again.connect() as connection:
            assert connection.execute(text("SELECT x FROM t")).scalar() == 7
        again.dispose()
        assert _mode(database) == 0o640
