"""``recoup db …``: migrations."""

from __future__ import annotations

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

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = url or get_settings().database_url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Create or migrate the database at RECOUP_DATABASE_URL."""
    upgrade(revision=revision)
    console.print("Database is up to date.")
