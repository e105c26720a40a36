"""``recoup db …``: migrations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from recoup.config import get_settings
from recoup.kit.cli import console

if TYPE_CHECKING:
    from alembic.config import Config

app = typer.Typer(help="Database schema.", no_args_is_help=True)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config for Recoup's migrations and ``url`` (default: settings)."""
    # Alembic is imported by the commands that migrate, not by every ``recoup`` start.
    from alembic.config import Config

    # Alembic's default stream is whatever sys.stdout was when it was first imported (a
    # test runner's capture, later closed): give it today's.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = url or get_settings().database_url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """Return the database's migration revision, or None when it has no Recoup schema yet."""
    from alembic.runtime.migration import MigrationContext

    from recoup.db import make_engine

    engine = make_engine(url or get_settings().database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Create or migrate the database at RECOUP_DATABASE_URL."""
    from sqlalchemy.engine import make_url

    where = make_url(get_settings().database_url).render_as_string(hide_password=True)
    before = current_revision()
    upgrade(revision=revision)
    after = current_revision()
    if before is None:
        console.print(f"Created the database schema (revision {after}) at {where}.")
    elif before != after:
        console.print(f"Migrated the database from revision {before} to {after} at {where}.")
    else:
        console.print(f"The database at {where} is up to date (revision {after}).")
