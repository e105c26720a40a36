"""Bulk writes of many rows through the database driver, for the batch path (the daily cycle).

SQLAlchemy's executemany builds a parameter dictionary per row and runs every value through
its column type (JSON encoding, timestamp formatting), and on SQLite an insert that must
return its ids in the rows' order is sent one row at a time. A daily batch repeats the same
few values (a rule list, a planned time, a time zone) over and over, so here each column's
bind processing runs once per distinct value and the rows go to the driver as one
``executemany`` of plain tuples. What is stored is exactly what a Core insert would store.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, Executable, Table, func, select, text
from sqlalchemy.orm import Session


def _key(value: Any) -> Hashable:
    """Return a hashable stand-in for a value, telling apart values that compare equal but
    encode differently (``True`` and ``1``, a list and a tuple)."""
    if isinstance(value, list | tuple):
        return (type(value), tuple(_key(item) for item in value))
    if isinstance(value, dict):
        return (dict, tuple((name, _key(item)) for name, item in value.items()))
    try:
        hash(value)
    except TypeError:
        return (type(value), repr(value))
    return (type(value), value)


# Value types hashable as they are (the common case, keyed without walking the value).
_PLAIN = frozenset({str, int, float, bool, type(None), datetime, date})


def _processors(connection: Connection, table: Table, names: Sequence[str]) -> list[Any]:
    dialect = connection.dialect
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]


def driver_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Return the rows' values of the named columns as the driver takes them, each distinct
    value of a column bind-processed once."""
    columns = []
    for name, processor in zip(names, _processors(connection, table, names), strict=True):
        values = [row[name] for row in rows]
        if processor is not None:
            values = _processed(values, processor)
        columns.append(values)
    return list(zip(*columns, strict=True))


def _processed(values: Sequence[Any], processor: Callable[[Any], Any]) -> list[Any]:
    # Each distinct value (told apart as ``coded`` tells them) is processed once.
    column = coded(values)
    done = [processor(value) for value in column.values]
    return [done[code] for code in column.codes]


def driver_columns(
    connection: Connection, table: Table, columns: Mapping[str, Sequence[Any] | Coded]
) -> list[tuple[Any, ...]]:
    """Return rows as the driver takes them from equally long columns of values (name →
    values, or ``Coded``), each distinct value of a column bind-processed once."""
    names = list(columns)
    processed = []
    for name, processor in zip(names, _processors(connection, table, names), strict=True):
        processed.append(_bound(columns[name], processor))
    return list(zip(*processed, strict=True))


def _bound(column: Sequence[Any] | Coded, processor: Callable[[Any], Any] | None) -> Sequence[Any]:
    if isinstance(column, Coded):
        bound = [value if processor is None else processor(value) for value in column.values]
        return [bound[code] for code in column.codes]
    return column if processor is None else _processed(column, processor)


def _marker(connection: Connection) -> str:
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def _connection(session: Session) -> Connection:
    """Return the session's connection once its pending changes are written, as
    ``session.execute`` would (a bulk write must not overtake them)."""
    session.flush()
    return session.connection()


def _insert_statement(connection: Connection, table: Table, names: Sequence[str]) -> str:
    quote = connection.dialect.identifier_preparer.quote
    return (
        f"INSERT INTO {connection.dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join(_marker(connection) for _ in names)})"
    )


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert rows (every row with the first row's columns) in one driver executemany."""
    if not rows:
        return 0
    connection = _connection(session)
    names = list(rows[0])
    statement = _insert_statement(connection, table, names)
    connection.exec_driver_sql(statement, driver_rows(connection, table, rows, names))
    return len(rows)


@dataclass(frozen=True, slots=True)
class Coded:
    """A column given as its distinct values and, per row, the index of the row's value."""

    values: Sequence[Any]
    codes: Iterable[int]


def coded(values: Sequence[Any]) -> Coded:
    """Return a column of few distinct values as ``Coded``, its values told apart as a write
    binds them (``True`` and ``1``, or one instant in two zones, stay apart): worked out where
    the column is built (a worker process), the writer binds each distinct value once and
    looks the rows' values up by index, without hashing every row's value again."""
    index: dict[Hashable, int] = {}
    # A list or dict repeated as one object (a value shared by many rows) is looked up by
    # identity, without walking it again; ``values`` holds every object for the whole loop,
    # so an identity is never reused meanwhile.
    same: dict[int, int] = {}
    distinct: list[Any] = []
    codes: list[int] = []
    for value in values:
        kind = type(value)
        if kind in _PLAIN:
            key: Hashable = (kind, value)
        else:
            identity = id(value)
            code = same.get(identity)
            if code is not None:
                codes.append(code)
                continue
            key = _key(value)
        code = index.get(key)
        if code is None:
            code = index[key] = len(distinct)
            distinct.append(value)
        if kind not in _PLAIN:
            same[identity] = code
        codes.append(code)
    return Coded(distinct, codes)


def insert_columns(
    session: Session,
    table: Table,
    columns: Mapping[str, Sequence[Any] | Coded],
    *,
    size: int,
    constants: Mapping[str, Any] | None = None,
) -> int:
    """Insert ``size`` rows given column by column in one driver executemany.

    A column is a sequence of one value per row, or ``Coded`` (its distinct values, bound
    once each, and one index per row); ``constants`` hold a value every row has. No mapping
    per row is built: for large batches written in parts (the scoring stage).
    """
    if not size:
        return 0
    constants = constants or {}
    connection = _connection(session)
    names = [*columns, *constants]
    values: list[Iterable[Any]] = []
    for name, processor in zip(names, _processors(connection, table, names), strict=True):
        if name in constants:
            value = constants[name]
            values.append(repeat(value if processor is None else processor(value), size))
            continue
        column = columns[name]
        if isinstance(column, Coded):
            values.append(_bound(column, processor))
        elif processor is not None:
            values.append(_processed(list(column), processor))
        else:
            values.append(column)
    rows = list(zip(*values))  # noqa: B905 (constants repeat without end)
    if len(rows) != size:
        raise ValueError(f"columns hold {len(rows)} rows, not {size}")
    connection.exec_driver_sql(_insert_statement(connection, table, names), rows)
    return size


def fetch_rows(session: Session, statement: Executable) -> list[Any]:
    """Return a query's rows as the database driver gives them: plain tuples, no conversion
    per value (SQLite's timestamps stay text), for large reads turned into columns."""
    result = session.connection().execute(statement)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def sequence_ids(session: Session, table: Table, count: int) -> list[int]:
    """Return ``count`` fresh ids for a PostgreSQL table from its id sequence, in one round
    trip, to insert with explicit ids (an insert that returns its ids in the rows' order goes
    through SQLAlchemy row by row). Ids taken are never handed out again, used or not."""
    connection = _connection(session)
    if connection.dialect.name != "postgresql":
        raise ValueError("sequence_ids reads the id sequence: PostgreSQL only")
    taken = connection.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": count},
    ).scalars()
    return sorted(int(value) for value in taken)


def next_ids(session: Session, table: Table, count: int) -> list[int]:
    """Return ``count`` fresh ids for a SQLite table, to insert with explicit ids.

    Only inside a write transaction (SQLite's single write lock is held from ``BEGIN
    IMMEDIATE`` on, so no other writer takes ids meanwhile); an id taken anyway would fail
    the insert on the primary key, never be shared.
    """
    connection = _connection(session)
    if connection.dialect.name != "sqlite":
        raise ValueError("next_ids reads MAX(id): use a sequence on this database")
    highest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(highest) + 1, int(highest) + 1 + count))


def _update_statement(connection: Connection, table: Table, names: Sequence[str], key: str) -> str:
    quote = connection.dialect.identifier_preparer.quote
    marker = _marker(connection)
    return (
        f"UPDATE {connection.dialect.identifier_preparer.format_table(table)} SET "
        f"{', '.join(f'{quote(name)} = {marker}' for name in names)} "
        f"WHERE {quote(key)} = {marker}"
    )


def update_rows(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, key: str
) -> int:
    """Update rows by ``key`` (each row sets the first row's other columns) in one executemany."""
    if not rows:
        return 0
    connection = _connection(session)
    names = [name for name in rows[0] if name != key]
    connection.exec_driver_sql(
        _update_statement(connection, table, names, key),
        driver_rows(connection, table, rows, [*names, key]),
    )
    return len(rows)


def update_columns(
    session: Session, table: Table, columns: Mapping[str, Sequence[Any] | Coded], *, key: str
) -> int:
    """Update rows by ``key`` given as columns (name → one value per row, or ``Coded``; ``key``
    among them, as values) in one executemany: each row sets the other columns. A value
    shared by many rows (one list object) is bind-processed once."""
    keys = columns[key]
    assert not isinstance(keys, Coded), "the key column is given as values"
    count = len(keys)
    if not count:
        return 0
    connection = _connection(session)
    names = [name for name in columns if name != key]
    ordered = {**{name: columns[name] for name in names}, key: columns[key]}
    connection.exec_driver_sql(
        _update_statement(connection, table, names, key), driver_columns(connection, table, ordered)
    )
    return count
