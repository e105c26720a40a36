"""The simulation benches' start-up: their common options, and the demo seeded on a scratch
SQLite file with the institution's live cases read once (``simulation.service.prepare``)."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recoup.simulation.service import NamedStrategy, Setup


def add_arguments(parser: argparse.ArgumentParser, *, small: str) -> None:
    """Add the options every simulation bench takes (``small`` says what --small runs)."""
    parser.add_argument("--accounts", type=int, default=5_000, help="demo accounts to seed")
    parser.add_argument("--institution", default="DEMO-CF")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--small", action="store_true", help=small)


def seeds(small: bool) -> list[int]:
    """The simulation seeds each strategy runs on: 2 for a quick look, else 5."""
    return [1, 2] if small else [1, 2, 3, 4, 5]


def seeded_setup(
    *, accounts: int, institution: str, prefix: str
) -> tuple[Setup, NamedStrategy, NamedStrategy]:
    """Seed the demo (seed 42, no models; untimed) on a scratch SQLite file and return the
    institution's simulation setup, its active strategy (``default``) and ``baseline``."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        os.environ["RECOUP_DATA_DIR"] = folder
        os.environ["RECOUP_DATABASE_URL"] = f"sqlite:///{folder}/bench.db"
        os.environ.pop("RECOUP_KEYRING_FILE", None)

        from recoup.db import get_engine, unit_of_work
        from recoup.demo.cli import prepare_schema, run_seed
        from recoup.institutions import repository as institutions
        from recoup.simulation import service

        prepare_schema()
        run_seed(accounts=accounts, seed=42, models=False)
        with unit_of_work() as session:
            found = institutions.require_by_code(session, institution)
            setup = service.prepare(session, institution=found)
            default = service.strategy_named(session, institution=found, name="default")
            baseline = service.strategy_named(session, institution=found, name="baseline")
        get_engine().dispose()
    return setup, default, baseline
