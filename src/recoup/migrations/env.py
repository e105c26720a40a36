"""Alembic environment: one metadata, batch mode on SQLite."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from recoup.db import make_engine
from recoup.kit.crypto import BlindIndex, Encrypted
from recoup.models import Base
from recoup.models.base import UTCDateTime

config = context.config
url: str = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""


def render_item(kind: str, item: Any, _autogen_context: Any) -> str | Literal[False]:
    """Write encrypted and blind-index columns as their plain storage types (schema only)."""
    if kind == "type" and isinstance(item, Encrypted):
        return "sa.Text()"
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(item, BlindIndex):
        return "sa.String(length=64)"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite" and not connection.in_transaction():
        # Batch mode rebuilds a table to alter it; rows of other tables point at it meanwhile,
        # so SQLite checks foreign keys once the revisions are done (outside a transaction:
        # SQLite ignores this pragma inside one).
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            _migrate(connection)
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
        return
    _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
