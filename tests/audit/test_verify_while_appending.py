"""``recoup audit verify`` and ``checkpoint`` stay right while the app appends events."""

import json
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from recoup import config
from recoup.audit import repository
from recoup.audit import service as audit
from recoup.cli import app as cli
from recoup.db import get_engine, make_engine, unit_of_work
from recoup.models import Base

POSTGRES_URL = os.environ.get(
    "RECOUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def committed_db(
    request: pytest.FixtureRequest, cli_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A database the CLI uses whose writes really commit (SQLite file or a PostgreSQL schema)."""
    if request.param == "sqlite":
        yield cli_db
        return
    schema = f"recoup_audit_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    schema_engine = make_engine(url)
    Base.metadata.create_all(schema_engine)
    schema_engine.dispose()
    get_engine().dispose()
    monkeypatch.setenv("RECOUP_DATABASE_URL", url)
    config.get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        yield url
    finally:
        get_engine().dispose()
        get_engine.cache_clear()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _append(actor: str) -> None:
    with unit_of_work() as session:
        audit.record(session, actor=actor, action="x.y", object_type="t", object_id=1)


AppendAfterRead = Callable[[int], None]


@pytest.fixture
def append_after_head_read(monkeypatch: pytest.MonkeyPatch) -> AppendAfterRead:
    """Arrange for another connection to commit an event right after the n-th read of the head."""

    def arrange(nth: int) -> None:
        real = repository.read_head
        reads = 0

        def read_head_then_append(session: object) -> tuple[int, str]:
            nonlocal reads
            head = real(session)  # type: ignore[arg-type]
            reads += 1
            if reads == nth:
                _append("concurrent")
            return head

        monkeypatch.setattr(repository, "read_head", read_head_then_append)

    return arrange


class TestAConcurrentAppend:
    def test_is_not_a_broken_chain(
        self, committed_db: str, append_after_head_read: AppendAfterRead
    ) -> None:
        for n in range(3):
            _append(f"user{n}")
        append_after_head_read(1)
        result = CliRunner().invoke(cli, ["audit", "verify"])
        assert result.exit_code == 0, result.output
        assert "OK: 3 audit events verified" in result.output

    def test_does_not_stop_a_checkpoint(
        self, committed_db: str, append_after_head_read: AppendAfterRead
    ) -> None:
        for n in range(3):
            _append(f"user{n}")
        # The third read is the one the checkpoint's own verification makes.
        append_after_head_read(3)
        result = CliRunner().invoke(cli, ["audit", "checkpoint"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["sequence"] == 3
