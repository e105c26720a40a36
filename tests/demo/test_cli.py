"""``recoup seed-demo`` and ``recoup demo --no-serve`` against a temporary SQLite file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from recoup import config, db
from recoup.cli import app
from recoup.models import Account, Base, User

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "demo.db"
    monkeypatch.setenv("RECOUP_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLUMNS", "120")
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    yield path
    db.get_engine().dispose()
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()


def _passwords(output: str) -> list[str]:
    return re.findall(r"(?:cf|bank)\.\w+\s+│\s+\w+\s+│\s+(\S+)\s+│", output)


class TestSeedDemoCommand:
    def test_seeds_prints_passwords_once_and_then_skips(self, database: Path) -> None:
        Base.metadata.create_all(db.get_engine())
        first = runner.invoke(app, ["seed-demo", "--accounts", "240", "--seed", "3"])
        assert first.exit_code == 0, first.output
        assert "DEMO-CF" in first.output
        assert "DEMO-BANK" in first.output
        passwords = _passwords(first.output)
        assert len(passwords) == 18
        assert all(len(password) >= 20 for password in passwords)
        with db.unit_of_work() as session:
            assert session.execute(select(func.count()).select_from(Account)).scalar_one() == 240
            assert session.execute(select(func.count()).select_from(User)).scalar_one() == 18

        second = runner.invoke(app, ["seed-demo", "--accounts", "240", "--seed", "3"])
        assert second.exit_code == 0, second.output
        assert second.output.count("skipped") == 2
        assert _passwords(second.output) == []

        db.get_engine().dispose()
        stored = b"".join(path.read_bytes() for path in database.parent.glob("demo.db*"))
        assert not [password for password in passwords if password.encode() in stored]

    def test_rejects_a_non_positive_account_count(self, database: Path) -> None:
        result = runner.invoke(app, ["seed-demo", "--accounts", "0"])
        assert result.exit_code != 0


class TestDemoCommand:
    def test_prepares_the_schema_and_seeds_an_empty_database(self, database: Path) -> None:
        result = runner.invoke(app, ["demo", "--accounts", "120", "--no-serve"])
        assert result.exit_code == 0, result.output
        with db.unit_of_work() as session:
            assert session.execute(select(func.count()).select_from(Account)).scalar_one() == 120
        again = runner.invoke(app, ["demo", "--accounts", "120", "--no-serve"])
        assert again.exit_code == 0, again.output
        assert again.output.count("skipped") == 2
