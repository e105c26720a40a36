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
from recoup.demo.service import ACTOR
from recoup.models import Account, AuditEvent, Base, Institution, User
from recoup.models.scoring import AccountScore, ModelState, ModelVersion, ScoringRun
from recoup.simulation.service import settings_allocation

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


def _models(code: str) -> list[tuple[str, ModelState, str | None]]:
    with db.unit_of_work() as session:
        statement = (
            select(ModelVersion.family, ModelVersion.state, ModelVersion.promoted_by)
            .join(Institution, Institution.id == ModelVersion.institution_id)
            .where(Institution.code == code)
            .order_by(ModelVersion.family)
        )
        return [(family, state, by) for family, state, by in session.execute(statement)]


def _unscored_delinquent_accounts(code: str) -> int:
    with db.unit_of_work() as session:
        scored = select(AccountScore.account_id)
        statement = (
            select(func.count())
            .select_from(Account)
            .join(Institution, Institution.id == Account.institution_id)
            .where(Institution.code == code, Account.days_past_due > 0)
            .where(Account.id.not_in(scored))
        )
        return int(session.execute(statement).scalar_one())


def _priority_bases(code: str) -> set[str]:
    with db.unit_of_work() as session:
        statement = (
            select(AccountScore.priority_basis)
            .join(Institution, Institution.id == AccountScore.institution_id)
            .where(Institution.code == code)
            .distinct()
        )
        return {str(basis) for basis in session.execute(statement).scalars()}


def _count(model: type) -> int:
    with db.unit_of_work() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


class TestDemoModels:
    def test_trains_promotes_and_scores_each_newly_seeded_institution(self, cli_db: str) -> None:
        result = runner.invoke(app, ["seed-demo", "--accounts", "900", "--seed", "3", "--models"])
        assert result.exit_code == 0, result.output
        assert "note:" not in result.output
        assert "Demo models" in result.output
        scored = [
            ("gbm", ModelState.candidate, None),
            ("scorecard", ModelState.champion, ACTOR),
        ]
        # The commercial bank's preset puts agents on uplift × balance: it gets an uplift model.
        assert _models("DEMO-CF") == scored
        assert _models("DEMO-BANK") == [*scored, ("uplift", ModelState.candidate, None)]
        for code in ("DEMO-CF", "DEMO-BANK"):
            assert _unscored_delinquent_accounts(code) == 0
            assert f"{code}: scored" in result.output
        assert "DEMO-BANK: uplift model uplift-" in " ".join(result.output.split())
        assert _priority_bases("DEMO-CF") == {"propensity"}
        assert "uplift" in _priority_bases("DEMO-BANK")
        assert "no_uplift_model" not in _priority_bases("DEMO-BANK")
        with db.unit_of_work() as session:
            for code, basis in (("DEMO-BANK", "uplift"), ("DEMO-CF", "propensity")):
                found = session.execute(
                    select(Institution).where(Institution.code == code)
                ).scalar_one()
                assert settings_allocation(session, institution=found).basis == basis
        assert _count(AccountScore) > 0
        assert _count(ScoringRun) == 2
        with db.unit_of_work() as session:
            promotions = session.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "models.promote", AuditEvent.actor == ACTOR)
            ).scalar_one()
        assert promotions == 2

        again = runner.invoke(app, ["seed-demo", "--accounts", "900", "--seed", "3", "--models"])
        assert again.exit_code == 0, again.output
        assert again.output.count("skipped") == 2
        assert "Demo models" not in again.output
        assert _count(ModelVersion) == 5

    def test_seed_demo_leaves_a_bare_portfolio_by_default(self, cli_db: str) -> None:
        result = runner.invoke(app, ["seed-demo", "--accounts", "600", "--seed", "3"])
        assert result.exit_code == 0, result.output
        assert _count(Account) == 600
        assert _count(ModelVersion) == 0
        assert _count(AccountScore) == 0

    def test_a_portfolio_too_small_to_train_on_gets_a_note_not_a_failure(self, cli_db: str) -> None:
        result = runner.invoke(app, ["seed-demo", "--accounts", "240", "--seed", "3", "--models"])
        assert result.exit_code == 0, result.output
        assert "note: DEMO-BANK: no models or scores: training needs at least" in result.output
        assert _count(Account) == 240
        assert _models("DEMO-BANK") == []
