"""Queries and bulk writes for seeding the demo portfolio."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy import Connection, Dialect, Table, exists, func, insert, select, update
from sqlalchemy.orm import Session

from recoup.models import Account, Debtor, User
from recoup.models.cases import Case, CaseAccount, CaseEvent

Column = np.ndarray[Any, Any]


def has_portfolio(session: Session, institution_id: int) -> bool:
    """Tell whether an institution already holds any debtor or account."""
    debtors = exists().where(Debtor.institution_id == institution_id)
    accounts = exists().where(Account.institution_id == institution_id)
    return bool(session.execute(select(debtors | accounts)).scalar())


def count_accounts(session: Session, institution_id: int) -> int:
    """Return how many accounts an institution holds."""
    statement = (
        select(func.count()).select_from(Account).where(Account.institution_id == institution_id)
    )
    return int(session.execute(statement).scalar_one())


def ids_by_external_id(
    connection: Connection, table: Table, institution_id: int
) -> np.ndarray[Any, Any]:
    """Return an institution's row ids of ``table`` ordered by external id."""
    statement = (
        select(table.c.id)
        .where(table.c.institution_id == institution_id)
        .order_by(table.c.external_id)
    )
    return np.fromiter(connection.execute(statement).scalars(), dtype=np.int64)


def max_id(connection: Connection, table: Table, institution_id: int) -> int:
    """Return an institution's highest row id of ``table`` (0 when it has none)."""
    statement = select(func.max(table.c.id)).where(table.c.institution_id == institution_id)
    return int(connection.execute(statement).scalar() or 0)


def ids_after(
    connection: Connection, table: Table, institution_id: int, after: int
) -> np.ndarray[Any, Any]:
    """Return an institution's row ids of ``table`` above ``after``, in insertion order."""
    statement = (
        select(table.c.id)
        .where(table.c.institution_id == institution_id, table.c.id > after)
        .order_by(table.c.id)
    )
    return np.fromiter(connection.execute(statement).scalars(), dtype=np.int64)


@dataclass(frozen=True)
class PreparedInsert:
    """Rows ready for the driver, and the statement that loads them."""

    statement: str
    rows: list[tuple[Any, ...]]
    # PostgreSQL (psycopg) loads with COPY, which is several times faster than INSERT batches.
    copy: bool = False


def prepare_insert(
    dialect: Dialect, table: Table, columns: dict[str, Column | Any]
) -> PreparedInsert:
    """Turn equal-length columns (a scalar repeats) into driver rows for one bulk load.

    Each value still goes through its column type's bind processing for ``dialect``, so
    ``Encrypted`` columns are encrypted exactly as on any Core insert. What is skipped is
    SQLAlchemy's per-row parameter dictionaries, the bulk of the cost on a million rows;
    dates and times are formatted vectorised where the dialect stores them as text.
    Touches no connection, so it can run in a helper thread while the previous chunk is written.
    """
    arrays = [values for values in columns.values() if isinstance(values, np.ndarray)]
    count = len(arrays[0]) if arrays else 0
    _check_required(table, columns)
    values: list[Iterable[Any]] = []
    for name, column_values in columns.items():
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if not isinstance(column_values, np.ndarray):
            values.append(repeat(processor(column_values) if processor else column_values, count))
        else:
            values.append(_driver_values(column_values, processor))
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    rows = list(zip(*values, strict=False))
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
        return PreparedInsert(statement=statement, rows=rows, copy=True)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {preparer.format_table(table)} ({names}) "
        f"VALUES ({', '.join(marker for _ in columns)})"
    )
    return PreparedInsert(statement=statement, rows=rows)


def execute_insert(connection: Connection, prepared: PreparedInsert) -> int:
    """Load prepared rows (COPY, or one driver ``executemany``) in the connection's transaction."""
    if not prepared.rows:
        return 0
    if prepared.copy:
        driver_connection: Any = connection.connection.driver_connection
        with driver_connection.cursor() as cursor, cursor.copy(prepared.statement) as copy:
            for row in prepared.rows:
                copy.write_row(row)
    else:
        connection.exec_driver_sql(prepared.statement, prepared.rows)
    return len(prepared.rows)


def _driver_values(values: Column, processor: Callable[[Any], Any] | None) -> list[Any]:
    """Convert one numpy column to what the driver takes, vectorised where the result is text."""
    if values.dtype.kind == "b":
        return values.tolist()  # type: ignore[no-any-return]  # Python bools suit every driver
    if values.dtype.kind == "M":
        if processor is None:
            return _python_moments(values)
        present = np.flatnonzero(~np.isnat(values))
        if len(present):
            text = _datetime_text(values)
            first = int(present[0])
            # Use the fast text only if it is exactly what the dialect itself would store.
            if processor(_python_moments(values[first : first + 1])[0]) == text[first]:
                return text
        return [None if value is None else processor(value) for value in _python_moments(values)]
    plain = values.tolist()
    if processor is None:
        return plain  # type: ignore[no-any-return]
    return [None if value is None else processor(value) for value in plain]


def _python_moments(values: Column) -> list[Any]:
    if np.datetime_data(values.dtype)[0] == "D":
        return values.tolist()  # type: ignore[no-any-return]
    moments = values.astype("datetime64[us]").tolist()
    return [None if moment is None else moment.replace(tzinfo=UTC) for moment in moments]


def _datetime_text(values: Column) -> list[str | None]:
    if np.datetime_data(values.dtype)[0] == "D":
        text = np.datetime_as_string(values, unit="D")
    else:
        text = np.strings.replace(np.datetime_as_string(values, unit="us"), "T", " ")
    result: list[str | None] = text.tolist()
    for index in np.flatnonzero(np.isnat(values)).tolist():
        result[index] = None
    return result


def _check_required(table: Table, columns: dict[str, Any]) -> None:
    """Refuse to write rows that would miss a NOT NULL column the database cannot fill."""
    missing = [
        column.name
        for column in table.columns
        if column.name not in columns
        and not column.nullable
        and column.server_default is None
        and not column.primary_key
    ]
    if missing:
        raise ValueError(
            f"bulk insert into {table.name} is missing required columns: {', '.join(missing)}"
        )


@contextmanager
def large_page_cache(connection: Connection, *, mebibytes: int = 256) -> Iterator[None]:
    """On SQLite, give this connection a large page cache while bulk writing, then restore it.

    Index pages (unique external ids, keyed hashes) otherwise fall out of the default 2 MB
    cache and every insert re-reads them; this roughly halves the time of a 1M-row seed.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{mebibytes * 1024}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(previous or -2000)}")


def chunked(total: int, size: int) -> Iterator[slice]:
    """Yield slices covering ``range(total)`` in steps of ``size``."""
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def set_team_lead(session: Session, *, user_ids: Sequence[int], team_lead_id: int) -> None:
    """Make ``team_lead_id`` the team lead of the given users."""
    if user_ids:
        session.execute(update(User).where(User.id.in_(user_ids)).values(team_lead_id=team_lead_id))


def delinquent_accounts(
    session: Session, *, institution_id: int, limit: int
) -> list[tuple[int, int, int | None]]:
    """Return (account id, debtor id, agent id) of the first delinquent accounts with an agent."""
    statement = (
        select(Account.id, Account.debtor_id, Case.owner_id)
        .join(CaseAccount, CaseAccount.account_id == Account.id)
        .join(Case, Case.id == CaseAccount.case_id)
        .where(
            Account.institution_id == institution_id,
            Account.days_past_due > 0,
            Case.owner_id.is_not(None),
            Case.closed_at.is_(None),
        )
        .order_by(Account.id)
        .limit(limit)
    )
    return [(account, debtor, agent) for account, debtor, agent in session.execute(statement)]


def case_ids_of_debtors(
    session: Session, *, institution_id: int, debtor_ids: Sequence[int]
) -> dict[int, int]:
    """Return the live case of each of these debtors that has one (debtor id → case id)."""
    found: dict[int, int] = {}
    for start in range(0, len(debtor_ids), 10_000):
        rows = session.execute(
            select(Case.debtor_id, Case.id).where(
                Case.institution_id == institution_id,
                Case.live_debtor_id.in_(debtor_ids[start : start + 10_000]),
            )
        )
        found.update({int(debtor_id): int(case_id) for debtor_id, case_id in rows})
    return found


def usernames(session: Session, *, user_ids: Sequence[int]) -> dict[int, str]:
    """Return the username of each of these users."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {int(user_id): str(name) for user_id, name in rows}


def add_case_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert case history rows (each a dict of ``case_events`` columns) in one statement."""
    if rows:
        session.execute(insert(CaseEvent), list(rows))
