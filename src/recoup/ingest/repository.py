"""Queries of imports and the data-quality report: set-based look-ups and bulk writes."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Date, DateTime, Row, Table, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recoup.models.account import Account, DelinquencyEvent
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.ingest import ImportReject, ImportRun, ImportStatus

_DEBTORS: Table = Debtor.__table__  # type: ignore[assignment]
_CONTACTS: Table = ContactPoint.__table__  # type: ignore[assignment]
_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
_EVENTS: Table = DelinquencyEvent.__table__  # type: ignore[assignment]
_REJECTS: Table = ImportReject.__table__  # type: ignore[assignment]

DEBTOR_COLUMNS = (
    "kind", "name", "national_id", "national_id_index", "id_kind", "birth_date", "province",
    "city", "district", "timezone", "language", "employer", "deceased", "bankrupt", "disputed",
    "cease_contact", "attorney_represented", "hardship",
)  # fmt: skip
CONTACT_COLUMNS = (
    "debtor_id", "kind", "value_index", "relation", "third_party", "contact_name", "status",
    "source", "timezone", "verified_at", "opt_out_call", "opt_out_sms", "opt_out_email",
    "consent_automated", "consent_recorded_at", "consent_source",
)  # fmt: skip
ACCOUNT_COLUMNS = (
    "debtor_id", "product", "currency", "credit_limit", "principal", "interest", "fees",
    "penalty", "minimum_due", "overdue_amount", "due_date", "days_past_due", "bucket", "status",
    "opened_on", "charged_off_on",
)  # fmt: skip

# The order of ``insert_rows`` tuples for accounts seen for the first time.
NEW_ACCOUNT_COLUMNS = (
    "institution_id",
    "external_id",
    *ACCOUNT_COLUMNS,
    "created_at",
    "updated_at",
)


def aware(moment: datetime | None) -> datetime | None:
    """Return a stored datetime as aware UTC (SQLite hands back naive ones)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _among(session: Session, column: Any, values: list[str]) -> Any:
    """Return ``column IN values``; on SQLite one JSON parameter instead of thousands of binds."""
    if session.get_bind().dialect.name == "sqlite":
        listed = func.json_each(json.dumps(values)).table_valued("value")
        return column.in_(select(listed.c.value))
    return column.in_(values)


def _rows_by_external_id(
    session: Session,
    table: Table,
    columns: Sequence[str],
    *,
    institution_id: int,
    external_ids: Collection[str],
) -> dict[str, Row[Any]]:
    if not external_ids:
        return {}
    statement = select(table.c.external_id, table.c.id, *(table.c[name] for name in columns)).where(
        table.c.institution_id == institution_id,
        _among(session, table.c.external_id, list(external_ids)),
    )
    return {row.external_id: row for row in session.connection().execute(statement)}


def existing_debtors(
    session: Session, *, institution_id: int, external_ids: Collection[str]
) -> dict[str, Row[Any]]:
    """Return the stored debtors among ``external_ids`` with the columns an import compares."""
    return _rows_by_external_id(
        session, _DEBTORS, DEBTOR_COLUMNS, institution_id=institution_id, external_ids=external_ids
    )


def existing_contacts(
    session: Session, *, institution_id: int, external_ids: Collection[str]
) -> dict[str, Row[Any]]:
    """Return the stored contact points among ``external_ids`` with their compared columns."""
    return _rows_by_external_id(
        session,
        _CONTACTS,
        CONTACT_COLUMNS,
        institution_id=institution_id,
        external_ids=external_ids,
    )


def existing_accounts(
    session: Session, *, institution_id: int, external_ids: Collection[str]
) -> dict[str, Row[Any]]:
    """Return the stored accounts among ``external_ids`` with their compared columns."""
    return _rows_by_external_id(
        session,
        _ACCOUNTS,
        ACCOUNT_COLUMNS,
        institution_id=institution_id,
        external_ids=external_ids,
    )


def ids_by_external_id(
    session: Session,
    model: type[Debtor] | type[Account],
    *,
    institution_id: int,
    external_ids: Iterable[str],
) -> dict[str, int]:
    """Return ``external_id → id`` for the rows of ``model`` that exist (one IN query)."""
    wanted = list(set(external_ids))
    if not wanted:
        return {}
    table: Table = model.__table__  # type: ignore[assignment]
    statement = select(table.c.external_id, table.c.id).where(
        table.c.institution_id == institution_id, _among(session, table.c.external_id, wanted)
    )
    return dict(session.connection().execute(statement).all())


def insert_import_events(
    session: Session,
    *,
    institution_id: int,
    external_ids: Sequence[str],
    effective_at: datetime,
    recorded_at: datetime,
) -> bool:
    """Record an import delinquency event for each named account from its stored state.

    One INSERT … SELECT inside SQLite, in the order of ``external_ids``, instead of
    reading the new ids back and sending every event row from Python. Returns ``False``
    on other backends, where the caller inserts the events itself.
    """
    if session.get_bind().dialect.name != "sqlite":
        return False
    if not external_ids:
        return True
    listed = func.json_each(json.dumps(list(external_ids))).table_valued("key", "value")
    balance = _ACCOUNTS.c.principal + _ACCOUNTS.c.interest + _ACCOUNTS.c.fees + _ACCOUNTS.c.penalty
    source = (
        select(
            _ACCOUNTS.c.institution_id,
            _ACCOUNTS.c.id,
            literal(effective_at, _EVENTS.c.effective_at.type),
            literal(recorded_at, _EVENTS.c.recorded_at.type),
            _ACCOUNTS.c.days_past_due,
            _ACCOUNTS.c.bucket,
            _ACCOUNTS.c.status,
            balance,
            literal("import", _EVENTS.c.cause.type),
            literal(False, _EVENTS.c.superseded.type),
        )
        .select_from(listed)
        .join(
            _ACCOUNTS,
            (_ACCOUNTS.c.institution_id == institution_id)
            & (_ACCOUNTS.c.external_id == listed.c.value),
        )
        .order_by(listed.c.key)
    )
    columns = [
        "institution_id", "account_id", "effective_at", "recorded_at", "days_past_due",
        "bucket", "status", "balance", "cause", "superseded",
    ]  # fmt: skip
    session.connection().execute(_EVENTS.insert().from_select(columns, source))
    return True


def account_currencies(
    session: Session, *, institution_id: int, external_ids: Iterable[str]
) -> dict[str, str]:
    """Return ``external_id → currency`` of the named accounts that exist."""
    wanted = list(set(external_ids))
    if not wanted:
        return {}
    statement = select(Account.external_id, Account.currency).where(
        Account.institution_id == institution_id, Account.external_id.in_(wanted)
    )
    return dict(session.execute(statement).all())


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    update_columns: Sequence[str],
) -> None:
    """Insert ``rows`` or update them in place by (institution_id, external_id), one executemany."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:  # pragma: no cover - only the two supported backends exist
        raise NotImplementedError(f"imports support SQLite and PostgreSQL, not {dialect}")
    statement = statement.on_conflict_do_update(
        index_elements=["institution_id", "external_id"],
        set_={name: statement.excluded[name] for name in update_columns},
    )
    execute_many(session, statement, table, rows)


def plain_inserts(session: Session) -> bool:
    """Tell whether ``insert_rows`` may write rows the caller found missing a moment ago.

    On SQLite it may: the look-up and the insert share one transaction, and in WAL mode a
    row committed by another connection in between fails the write (SQLITE_BUSY_SNAPSHOT)
    with or without ON CONFLICT. PostgreSQL keeps the upsert, which such a row would meet.
    """
    return session.get_bind().dialect.name == "sqlite"


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert tuples of ``columns`` into ``table`` with one driver-level executemany.

    Built for a million rows: the SQL is written once, and only values of columns whose
    type needs converting (dates on SQLite) are converted, once per distinct value.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    converters = {
        index: processor
        for index, name in enumerate(columns)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    }
    if converters:
        # Column by column: a million rows repeat few distinct dates.
        by_column = list(zip(*rows, strict=True))
        for index, processor in converters.items():
            by_column[index] = tuple(map(_Converted(processor).__getitem__, by_column[index]))
        rows = list(zip(*by_column, strict=True))
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    placeholders = ", ".join(marker for _name in columns)
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"
    connection.exec_driver_sql(statement, list(rows))


def insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` with one executemany."""
    if rows:
        execute_many(session, table.insert(), table, rows)


def execute_many(
    session: Session, statement: Any, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run a Core insert as one driver-level executemany over ``rows`` (all with the same keys).

    SQLAlchemy's own executemany converts every parameter of every row in Python, which
    was most of an import's time. Here the statement is compiled once and only columns
    whose type needs it (encryption, SQLite date formats) are converted — dates and
    times once per distinct value.
    """
    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    converters: dict[str, Any] = {}
    for key in keys:
        column_type = table.c[key].type
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            # UTCDateTime wraps DateTime: its values repeat (one ``now`` per chunk) just the same.
            cached = isinstance(getattr(column_type, "impl", column_type), (Date, DateTime))
            converters[key] = _cached(processor) if cached else processor
    positions = compiled.positiontup
    if positions:
        parameters: list[Any] = []
        pick = itemgetter(*positions)
        convert_at = [
            (index, converters[key]) for index, key in enumerate(positions) if key in converters
        ]
        for row in rows:
            values = list(pick(row)) if len(positions) > 1 else [pick(row)]
            for index, convert in convert_at:
                if values[index] is not None:
                    values[index] = convert(values[index])
            parameters.append(tuple(values))
    else:
        parameters = [
            {
                key: converters[key](value) if key in converters and value is not None else value
                for key, value in row.items()
            }
            for row in rows
        ]
    connection.exec_driver_sql(compiled.string, parameters)


class _Converted(dict[Any, Any]):
    """Values converted by a bind processor, each distinct value once."""

    def __init__(self, processor: Any) -> None:
        super().__init__()
        self.processor = processor

    def __missing__(self, value: Any) -> Any:
        converted = self[value] = self.processor(value)
        return converted


def _cached(processor: Any) -> Any:
    cache: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        converted = cache.get(value)
        if converted is None:
            converted = cache[value] = processor(value)
        return converted

    return convert


def debtors_table() -> Table:
    return _DEBTORS


def contacts_table() -> Table:
    return _CONTACTS


def accounts_table() -> Table:
    return _ACCOUNTS


def events_table() -> Table:
    return _EVENTS


def rejects_table() -> Table:
    return _REJECTS


# --- data quality -------------------------------------------------------------------------


def count(session: Session, statement: Any) -> int:
    """Return a scalar count."""
    return int(session.execute(statement).scalar_one() or 0)


def debtor_totals(session: Session, *, institution_id: int) -> tuple[int, int]:
    """Return (debtors, debtors with at least one valid own contact point)."""
    total = count(
        session,
        select(func.count()).select_from(Debtor).where(Debtor.institution_id == institution_id),
    )
    reachable = count(
        session,
        select(func.count(func.distinct(ContactPoint.debtor_id))).where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.relation == "self",
            ContactPoint.status == "valid",
        ),
    )
    return total, reachable


def contact_verification(
    session: Session, *, institution_id: int, stale_before: datetime
) -> tuple[int, int, int]:
    """Return (contact points, never verified, last verified before ``stale_before``)."""
    scope = ContactPoint.institution_id == institution_id
    total = count(session, select(func.count()).select_from(ContactPoint).where(scope))
    never = count(session, select(func.count()).where(scope, ContactPoint.verified_at.is_(None)))
    stale = count(
        session, select(func.count()).where(scope, ContactPoint.verified_at < stale_before)
    )
    return total, never, stale


def shared_phone_groups(
    session: Session, *, institution_id: int, limit: int
) -> tuple[int, int, list[tuple[str, int]]]:
    """Return phones on several debtors: (groups, debtors in them, top (stored value, debtors))."""
    debtors = func.count(func.distinct(ContactPoint.debtor_id)).label("debtors")
    grouped = (
        select(ContactPoint.value_index, debtors, func.min(ContactPoint.id).label("sample_id"))
        .where(
            ContactPoint.institution_id == institution_id,
            ContactPoint.kind.in_(("mobile", "landline")),
        )
        .group_by(ContactPoint.value_index)
        .having(func.count(func.distinct(ContactPoint.debtor_id)) > 1)
        .subquery()
    )
    groups, members = session.execute(
        select(func.count(), func.coalesce(func.sum(grouped.c.debtors), 0))
    ).one()
    top = session.execute(
        select(ContactPoint.value, grouped.c.debtors)
        .join(grouped, ContactPoint.id == grouped.c.sample_id)
        .order_by(grouped.c.debtors.desc(), grouped.c.value_index)
        .limit(limit)
    )
    return int(groups), int(members), [(value, int(number)) for value, number in top]


def missing_by_column(
    session: Session, model: Any, columns: Sequence[str], *, institution_id: int
) -> dict[str, int]:
    """Return how many rows of ``model`` leave each of ``columns`` empty."""
    statement = select(
        *(func.count() - func.count(getattr(model, name)) for name in columns)
    ).where(model.institution_id == institution_id)
    values = session.execute(statement).one()
    return {name: int(value or 0) for name, value in zip(columns, values, strict=True)}


def latest_runs(session: Session, *, institution_id: int) -> list[ImportRun]:
    """Return the latest finished import run of each kind."""
    latest = (
        select(func.max(ImportRun.id))
        .where(ImportRun.institution_id == institution_id, ImportRun.status != ImportStatus.running)
        .group_by(ImportRun.kind)
    )
    return list(
        session.execute(
            select(ImportRun).where(ImportRun.id.in_(latest)).order_by(ImportRun.kind)
        ).scalars()
    )


def rejects_by_code(session: Session, *, run_ids: Sequence[int]) -> list[tuple[int, str, str, int]]:
    """Return (run id, code, one example reason, problems) for the given runs."""
    if not run_ids:
        return []
    statement = (
        select(ImportReject.run_id, ImportReject.code, func.min(ImportReject.reason), func.count())
        .where(ImportReject.run_id.in_(run_ids))
        .group_by(ImportReject.run_id, ImportReject.code)
        .order_by(ImportReject.run_id, func.count().desc())
    )
    return [(int(r), str(c), str(reason), int(n)) for r, c, reason, n in session.execute(statement)]


# --- import history pages -----------------------------------------------------------------


def recent_runs(
    session: Session, *, institution_id: int, offset: int, limit: int
) -> tuple[list[ImportRun], int]:
    """Return one page of an institution's import runs, newest first, and how many there are."""
    scope = ImportRun.institution_id == institution_id
    total = count(session, select(func.count()).select_from(ImportRun).where(scope))
    runs = session.execute(
        select(ImportRun)
        .where(scope)
        .order_by(ImportRun.started_at.desc(), ImportRun.id.desc())
        .offset(offset)
        .limit(limit)
    ).scalars()
    return list(runs), total


def run_rejects(
    session: Session, *, institution_id: int, run_id: int, offset: int = 0, limit: int | None = None
) -> tuple[list[ImportReject], int]:
    """Return rejected-field problems of one run in file order (all when no ``limit``) and total."""
    scope = (ImportReject.institution_id == institution_id, ImportReject.run_id == run_id)
    total = count(session, select(func.count()).select_from(ImportReject).where(*scope))
    rejects = session.execute(
        select(ImportReject)
        .where(*scope)
        .order_by(ImportReject.row_number, ImportReject.id)
        .offset(offset)
        .limit(limit)
    ).scalars()
    return list(rejects), total
