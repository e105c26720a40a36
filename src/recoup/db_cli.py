"""``recoup db …``: migrations."""

from __future__ import annotations

from pathlib import Path

import typer
from alembic import command
from alembic.config import Config

from recoup.config import get_settings
from recoup.kit.cli import console

app = typer.Typer(help="Database schema.", no_args_is_help=True)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic config for Recoup's migrations and ``url`` (default: settings)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = url or get_settings().database_url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Create or migrate the database at RECOUP_DATABASE_URL."""
    upgrade(revision=revision)
    console.print("Database is up to date.")
