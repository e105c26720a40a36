"""Queries of imports and the data-quality report: set-based look-ups and bulk writes."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Row,
    Table,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recoup.contact.rules import IMPORT_FLAGS, ConsentKind, channel_standing, import_flags
from recoup.enums import ImportStatus
from recoup.kit.clock import utcnow
from recoup.models.account import Account, DelinquencyEvent
from recoup.models.compliance import ContactWindow, WindowKind
from recoup.models.contact import ContactPointConsent
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.ingest import ImportReject, ImportRun

_DEBTORS: Table = Debtor.__table__  # type: ignore[assignment]
_CONTACTS: Table = ContactPoint.__table__  # type: ignore[assignment]
_ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
_EVENTS: Table = DelinquencyEvent.__table__  # type: ignore[assignment]
_REJECTS: Table = ImportReject.__table__  # type: ignore[assignment]
_CONSENTS: Table = ContactPointConsent.__table__  # type: ignore[assignment]

DEBTOR_COLUMNS = (
    "kind", "name", "national_id", "national_id_index", "id_kind", "birth_date", "province",
    "city", "district", "timezone", "language", "employer", "deceased", "bankrupt", "disputed",
    "cease_contact", "attorney_represented", "hardship", "work_contact_forbidden",
    "timezone_source",
)  # fmt: skip
CONTACT_COLUMNS = (
    "debtor_id", "kind", "value_index", "relation", "third_party", "contact_name", "status",
    "source", "timezone", "verified_at", "timezone_source",
)  # fmt: skip
# What a contacts file says of consent (its flag columns, and the consent's date and source),
# stored as contact_point_consents rows.
CONTACT_CONSENT_FIELDS = (*IMPORT_FLAGS, "consent_recorded_at", "consent_source")
NO_CONSENT: Mapping[str, Any] = MappingProxyType(
    {**dict.fromkeys(IMPORT_FLAGS, False), "consent_recorded_at": None, "consent_source": None}
)
_CONSENT_PAIRS = tuple(
    (kind, channel) for kind, channels in IMPORT_FLAGS.values() for channel in sorted(channels)
)
ACCOUNT_COLUMNS = (
    "debtor_id", "product", "currency", "credit_limit", "principal", "interest", "fees",
    "penalty", "minimum_due", "overdue_amount", "due_date", "days_past_due", "bucket", "status",
    "opened_on", "charged_off_on",
)  # fmt: skip
# Compliance dates an account file may carry: a blank keeps the stored date (clearing one is
# a recorded decision, made through the compliance-facts API, not by a file leaving it out).
ACCOUNT_FACT_COLUMNS = ("initial_communication_on", "validation_notice_sent_on", "time_barred_on")
_WRITTEN = (*ACCOUNT_COLUMNS, *ACCOUNT_FACT_COLUMNS)
_KEEP_STORED_FACTS = ", ".join(
    f"{name} = COALESCE(s.{name}, a.{name})" for name in ACCOUNT_FACT_COLUMNS
)

# The TEMP table an account chunk is staged in (``write_accounts``), and the fields it
# holds besides the ``ACCOUNT_COLUMNS``.
_STAGE = "import_account_stage"
_STAGED = frozenset({"row_number", "external_id", "debtor_external_id", "status_given"})


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


def contact_consents(
    session: Session, *, institution_id: int, contact_point_ids: Collection[int]
) -> dict[int, dict[str, Any]]:
    """Return what each of the contact points' consent rows say, as a contacts file's fields.

    A contact point with no rows is left out (it reads as ``NO_CONSENT``).
    """
    if not contact_point_ids:
        return {}
    rows = session.execute(
        select(
            ContactPointConsent.contact_point_id,
            ContactPointConsent.channel,
            ContactPointConsent.kind,
            ContactPointConsent.recorded_at,
            ContactPointConsent.source,
        )
        .where(
            ContactPointConsent.institution_id == institution_id,
            _among_ids(session, ContactPointConsent.contact_point_id, list(contact_point_ids)),
        )
        .order_by(ContactPointConsent.contact_point_id, ContactPointConsent.channel)
    ).all()
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(int(row.contact_point_id), []).append(row)
    stored: dict[int, dict[str, Any]] = {}
    for contact_point_id, own in found.items():
        flags = import_flags(channel_standing((str(r.channel), str(r.kind)) for r in own))
        consent = next((r for r in own if r.kind == ConsentKind.CONSENT), None)
        given = consent is not None and flags["consent_automated"]
        stored[contact_point_id] = {
            **flags,
            "consent_recorded_at": aware(consent.recorded_at) if given and consent else None,
            "consent_source": consent.source if given and consent else None,
        }
    return stored


def replace_contact_consents(
    session: Session,
    *,
    institution_id: int,
    consents: Mapping[int, Mapping[str, Any]],
    actor: str,
    now: datetime,
) -> None:
    """Make each contact point's consent rows say what its contacts-file fields say.

    Only the (channel, kind) pairs a flag column stands for are replaced; like the flag
    columns before them, a file that clears a flag withdraws that consent or opt-out.
    """
    if not consents:
        return
    session.execute(
        delete(ContactPointConsent).where(
            ContactPointConsent.institution_id == institution_id,
            _among_ids(session, ContactPointConsent.contact_point_id, list(consents)),
            tuple_(ContactPointConsent.kind, ContactPointConsent.channel).in_(_CONSENT_PAIRS),
        )
    )
    rows = []
    for contact_point_id, fields in consents.items():
        for flag, (kind, channels) in IMPORT_FLAGS.items():
            if not fields[flag]:
                continue
            consent = kind is ConsentKind.CONSENT
            for channel in sorted(channels):
                rows.append(
                    {
                        "institution_id": institution_id,
                        "contact_point_id": contact_point_id,
                        "channel": channel.value,
                        "kind": kind.value,
                        "source": fields["consent_source"] if consent else "import",
                        "recorded_at": fields["consent_recorded_at"] if consent else None,
                        "recorded_by": actor[:128],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    insert_many(session, _CONSENTS, rows)


def _among_ids(session: Session, column: Any, values: list[int]) -> Any:
    """Return ``column IN values`` for ids; on SQLite one JSON parameter, as ``_among``."""
    if session.get_bind().dialect.name == "sqlite":
        listed = func.json_each(json.dumps(values)).table_valued("value")
        return column.in_(select(listed.c.value))
    return column.in_(values)


def ids_by_external_id(
    session: Session,
    model: type[Debtor] | type[Account] | type[ContactPoint],
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


@dataclass
class AccountsWritten:
    """What ``write_accounts`` did with one chunk, and the rows whose debtor is unknown."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    unknown_debtors: list[tuple[int, str]] = field(default_factory=list)


def _stage_column(name: str, dialect: Any) -> tuple[str, Any]:
    """Return the staging column type of an import field and the converter of its values.

    Values are staged as ``accounts`` stores them: dates through their column type (as
    text on SQLite). A column whose type converts anything else (an encrypted column, say)
    would be written unconverted, so it stops the import instead.
    """
    if name not in _ACCOUNTS.c:
        return ("INTEGER" if name in ("row_number", "status_given") else "TEXT"), None
    column_type = _ACCOUNTS.c[name].type
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    if processor is not None:
        if isinstance(getattr(column_type, "impl", column_type), (Date, DateTime)):
            return "TEXT", processor
        raise NotImplementedError(
            f"accounts.{name} converts its values in Python: stage it converted in "
            "repository.write_accounts before importing accounts"
        )
    return ("INTEGER" if column_type.python_type in (int, bool) else "TEXT"), None


def write_accounts(
    session: Session,
    *,
    institution_id: int,
    fields: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    effective_at: datetime,
    recorded_at: datetime,
    ageing_statuses: Collection[str],
) -> AccountsWritten:
    """Insert, update or leave each account row and record its delinquency event, set-based.

    ``rows`` are ``(row number, *values of fields)`` with unique external ids, in file
    order: the fields are those of an import record (``external_id``,
    ``debtor_external_id``, ``status_given`` and the ``ACCOUNT_COLUMNS`` but ``debtor_id``).
    A blank status (``status_given`` false) keeps a stored status outside
    ``ageing_statuses``. Rows whose debtor does not exist are left out and returned.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        write = _write_accounts_postgresql
    elif dialect == "sqlite":
        write = _write_accounts_sqlite
    else:  # pragma: no cover - only the two supported backends exist
        raise NotImplementedError(f"imports support SQLite and PostgreSQL, not {dialect}")
    return write(
        session,
        institution_id=institution_id,
        fields=fields,
        rows=rows,
        effective_at=effective_at,
        recorded_at=recorded_at,
        ageing_statuses=ageing_statuses,
    )


def _write_accounts_sqlite(
    session: Session,
    *,
    institution_id: int,
    fields: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    effective_at: datetime,
    recorded_at: datetime,
    ageing_statuses: Collection[str],
) -> AccountsWritten:
    """Write account rows inside SQLite (see ``write_accounts``).

    The rows are loaded into a TEMP staging table with one executemany of plain tuples,
    which also looks up each row's debtor and stored account; everything else is one
    statement each: the kept statuses, new accounts one INSERT … SELECT, changed ones
    (compared column by column in SQL) one UPDATE … FROM, and the import events of new
    accounts and of changed bucket or status one INSERT … SELECT in row order. Foreign
    keys stay enforced: every written ``debtor_id`` was just read.

    A new account is inserted without ON CONFLICT: the look-up and the insert share one
    transaction, and in WAL mode a row committed by another connection in between fails
    the write (SQLITE_BUSY_SNAPSHOT) rather than being missed.
    """
    written = AccountsWritten()
    if not rows:
        return written
    connection = session.connection()
    dialect = connection.dialect
    institution = int(institution_id)
    scope = f"institution_id = {institution}"

    def bind(table: Table, column: str, value: Any) -> Any:
        processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        return processor(value) if processor is not None and value is not None else value

    everything = list(zip(*rows, strict=True))
    # Only the fields the statements use are staged, column by column.
    chosen = [
        index
        for index, name in enumerate(("row_number", *fields))
        if name in _STAGED or name in _WRITTEN
    ]
    names = tuple(("row_number", *fields)[index] for index in chosen)
    columns: list[Sequence[Any]] = [everything[index] for index in chosen]
    kinds = [_stage_column(name, dialect) for name in names]
    for index, (_kind, processor) in enumerate(kinds):
        if processor is not None:
            # Each distinct date converted once.
            columns[index] = list(map(_Converted(processor).__getitem__, columns[index]))
    # The staging rowid follows ``rows`` (file order): statements order by it without sorting.
    staged = list(zip(*columns, strict=True))
    stage_columns = ", ".join(
        f"{name} {kind}" for name, (kind, _processor) in zip(names, kinds, strict=True)
    )
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS temp.{_STAGE} "
        f"({stage_columns}, debtor_id INTEGER, account_id INTEGER, event INTEGER)"
    )
    connection.exec_driver_sql(f"DELETE FROM temp.{_STAGE}")
    numbered = ", ".join(f"?{index}" for index in range(1, len(names) + 1))
    debtor = names.index("debtor_external_id") + 1
    external = names.index("external_id") + 1
    connection.exec_driver_sql(
        f"INSERT INTO temp.{_STAGE} ({', '.join(names)}, debtor_id, account_id, event) "
        f"VALUES ({numbered}, "
        f"(SELECT id FROM main.debtors WHERE {scope} AND external_id = ?{debtor}), "
        f"(SELECT id FROM main.accounts WHERE {scope} AND external_id = ?{external}), 0)",
        staged,
    )
    written.unknown_debtors = [
        (int(number), str(value))
        for number, value in connection.exec_driver_sql(
            f"SELECT row_number, debtor_external_id FROM temp.{_STAGE} "
            "WHERE debtor_id IS NULL ORDER BY row_number"
        )
    ]
    kept = ", ".join("?" for _status in ageing_statuses)
    connection.exec_driver_sql(
        f"UPDATE temp.{_STAGE} AS s SET status = a.status FROM main.accounts AS a "
        f"WHERE a.id = s.account_id AND s.status_given = 0 AND a.status NOT IN ({kept})",
        tuple(str(status) for status in ageing_statuses),
    )
    connection.exec_driver_sql(
        f"UPDATE temp.{_STAGE} AS s SET {_KEEP_STORED_FACTS} FROM main.accounts AS a "
        "WHERE a.id = s.account_id"
    )
    connection.exec_driver_sql(
        f"UPDATE temp.{_STAGE} AS s SET event = 1 FROM main.accounts AS a "
        "WHERE a.id = s.account_id AND s.debtor_id IS NOT NULL "
        "AND (a.bucket IS NOT s.bucket OR a.status IS NOT s.status)"
    )
    now = bind(_ACCOUNTS, "updated_at", recorded_at)
    compared = ", ".join(f"{name} = s.{name}" for name in _WRITTEN)
    differs = " OR ".join(f"a.{name} IS NOT s.{name}" for name in _WRITTEN)
    written.updated = connection.exec_driver_sql(
        f"UPDATE main.accounts AS a SET {compared}, updated_at = ? FROM temp.{_STAGE} AS s "
        f"WHERE a.id = s.account_id AND s.debtor_id IS NOT NULL AND ({differs})",
        (now,),
    ).rowcount
    inserted_columns = ", ".join(_WRITTEN)
    written.inserted = connection.exec_driver_sql(
        f"INSERT INTO main.accounts (institution_id, external_id, {inserted_columns}, "
        f"created_at, updated_at) SELECT {institution}, external_id, {inserted_columns}, ?, ? "
        f"FROM temp.{_STAGE} WHERE account_id IS NULL AND debtor_id IS NOT NULL ORDER BY rowid",
        (now, now),
    ).rowcount
    known = len(rows) - len(written.unknown_debtors)
    written.unchanged = known - written.inserted - written.updated
    connection.exec_driver_sql(
        "INSERT INTO main.delinquency_events (institution_id, account_id, effective_at, "
        "recorded_at, days_past_due, bucket, status, balance, cause, superseded) "
        f"SELECT {institution}, a.id, ?, ?, s.days_past_due, s.bucket, s.status, "
        "s.principal + s.interest + s.fees + s.penalty, 'import', 0 "
        f"FROM temp.{_STAGE} AS s JOIN main.accounts AS a "
        f"ON a.institution_id = {institution} AND a.external_id = s.external_id "
        "WHERE s.debtor_id IS NOT NULL AND (s.account_id IS NULL OR s.event = 1) "
        "ORDER BY s.rowid",
        (bind(_EVENTS, "effective_at", effective_at), bind(_EVENTS, "recorded_at", recorded_at)),
    )
    connection.exec_driver_sql(f"DELETE FROM temp.{_STAGE}")
    return written


def _write_accounts_postgresql(
    session: Session,
    *,
    institution_id: int,
    fields: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    effective_at: datetime,
    recorded_at: datetime,
    ageing_statuses: Collection[str],
) -> AccountsWritten:
    """Write account rows inside PostgreSQL (see ``write_accounts``).

    The rows are copied (COPY) into a TEMP staging table; one UPDATE of the stage looks
    up each row's debtor and stored account (correlated look-ups, so each is an index
    probe whatever the planner thinks of the table's size), then the kept statuses, the
    changed accounts (UPDATE … FROM, compared with IS DISTINCT FROM), the new ones
    (INSERT … SELECT, their ids returned into the stage) and the import events are one
    statement each. A new account that another transaction committed meanwhile is
    updated by ON CONFLICT, as the row-by-row upsert did.
    """
    written = AccountsWritten()
    if not rows:
        return written
    connection = session.connection()
    dialect = connection.dialect
    names = ("row_number", *fields)
    for name in names:
        _stage_column(name, dialect)
    types = {"row_number": "integer", "debtor_external_id": "text", "status_given": "boolean"}
    stage_columns = ", ".join(
        f"{name} {types.get(name) or _ACCOUNTS.c[name].type.compile(dialect=dialect)}"
        for name in names
    )
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ({stage_columns}, debtor_id bigint, "
        "account_id bigint, stored_bucket text, stored_status text)"
    )
    connection.exec_driver_sql(f"TRUNCATE {_STAGE}")
    driver = connection.connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {_STAGE} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    connection.exec_driver_sql(f"ANALYZE {_STAGE}")
    scope = {"institution_id": institution_id}
    connection.execute(
        text(
            f"UPDATE {_STAGE} AS s SET debtor_id = (SELECT d.id FROM debtors AS d "
            "WHERE d.institution_id = :institution_id AND d.external_id = s.debtor_external_id), "
            "(account_id, stored_bucket, stored_status) = (SELECT a.id, a.bucket, a.status "
            "FROM accounts AS a "
            "WHERE a.institution_id = :institution_id AND a.external_id = s.external_id)"
        ),
        scope,
    )
    connection.execute(
        text(
            f"UPDATE {_STAGE} SET status = stored_status "
            "WHERE NOT status_given AND stored_status NOT IN :ageing"
        ).bindparams(bindparam("ageing", expanding=True)),
        {"ageing": [str(status) for status in ageing_statuses]},
    )
    connection.exec_driver_sql(
        f"UPDATE {_STAGE} AS s SET {_KEEP_STORED_FACTS} FROM accounts AS a "
        "WHERE a.id = s.account_id"
    )
    written.unknown_debtors = [
        (int(number), str(value))
        for number, value in connection.exec_driver_sql(
            f"SELECT row_number, debtor_external_id FROM {_STAGE} "
            "WHERE debtor_id IS NULL ORDER BY row_number"
        )
    ]
    compared = ", ".join(f"{name} = s.{name}" for name in _WRITTEN)
    differs = " OR ".join(f"a.{name} IS DISTINCT FROM s.{name}" for name in _WRITTEN)
    now = {"now": recorded_at}
    written.updated = connection.execute(
        text(
            f"UPDATE accounts AS a SET {compared}, updated_at = :now FROM {_STAGE} AS s "
            "WHERE a.id = s.account_id AND s.account_id IS NOT NULL "
            f"AND s.debtor_id IS NOT NULL AND ({differs})"
        ),
        now,
    ).rowcount
    columns = ", ".join(_WRITTEN)
    excluded = ", ".join(f"{name} = excluded.{name}" for name in _WRITTEN)
    written.inserted = connection.execute(
        text(
            "WITH inserted AS ("
            f"INSERT INTO accounts (institution_id, external_id, {columns}, created_at, "
            f"updated_at) SELECT :institution_id, external_id, {columns}, :now, :now "
            f"FROM {_STAGE} WHERE account_id IS NULL AND debtor_id IS NOT NULL "
            "ORDER BY row_number ON CONFLICT (institution_id, external_id) "
            f"DO UPDATE SET {excluded}, updated_at = excluded.updated_at "
            "RETURNING id, external_id) "
            f"UPDATE {_STAGE} AS s SET account_id = inserted.id FROM inserted "
            "WHERE s.external_id = inserted.external_id"
        ),
        {**scope, **now},
    ).rowcount
    known = len(rows) - len(written.unknown_debtors)
    written.unchanged = known - written.inserted - written.updated
    connection.execute(
        text(
            "INSERT INTO delinquency_events (institution_id, account_id, effective_at, "
            "recorded_at, days_past_due, bucket, status, balance, cause, superseded) "
            "SELECT :institution_id, account_id, :effective_at, :recorded_at, days_past_due, "
            "bucket, status, principal + interest + fees + penalty, 'import', false "
            f"FROM {_STAGE} WHERE debtor_id IS NOT NULL AND account_id IS NOT NULL "
            "AND (stored_status IS NULL OR stored_bucket IS DISTINCT FROM bucket "
            "OR stored_status IS DISTINCT FROM status) ORDER BY row_number"
        ),
        {**scope, "effective_at": effective_at, "recorded_at": recorded_at},
    )
    connection.exec_driver_sql(f"TRUNCATE {_STAGE}")
    return written


def replace_inconvenient(
    session: Session,
    *,
    institution_id: int,
    windows: Mapping[int, Sequence[Mapping[str, Any]]],
    places: Mapping[int, list[str] | None],
) -> None:
    """Replace the stated inconvenient windows and places of the debtors given (by id)."""
    if windows:
        table: Table = ContactWindow.__table__  # type: ignore[assignment]
        session.execute(
            delete(table).where(
                table.c.institution_id == institution_id,
                table.c.kind == WindowKind.inconvenient,
                table.c.debtor_id.in_(list(windows)),
            )
        )
        now = utcnow()
        insert_many(
            session,
            table,
            [
                {
                    "institution_id": institution_id,
                    "debtor_id": debtor_id,
                    "kind": WindowKind.inconvenient.value,
                    "note": "import",
                    "created_at": now,
                    "updated_at": now,
                    **window,
                }
                for debtor_id, rows in windows.items()
                for window in rows
            ],
        )
    if places:
        session.execute(
            update(_DEBTORS)
            .where(
                _DEBTORS.c.institution_id == institution_id,
                _DEBTORS.c.id == bindparam("debtor"),
            )
            .values(inconvenient_places=bindparam("places")),
            [{"debtor": debtor_id, "places": value} for debtor_id, value in places.items()],
        )


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


def contacts_without_consent_date(session: Session, *, institution_id: int) -> int:
    """Return how many contact points have no consent on record with the date it was given."""
    dated = exists().where(
        ContactPointConsent.contact_point_id == ContactPoint.id,
        ContactPointConsent.kind == ConsentKind.CONSENT,
        ContactPointConsent.recorded_at.is_not(None),
    )
    statement = select(func.count()).where(ContactPoint.institution_id == institution_id, ~dated)
    return int(session.execute(statement).scalar_one())


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


def interrupt_silent_runs(
    session: Session, *, institution_id: int, silent_since: datetime, message: str
) -> int:
    """Mark running imports silent since ``silent_since`` as interrupted; return how many.

    Their last heartbeat becomes their finish time.
    """
    result = session.execute(
        update(ImportRun)
        .where(
            ImportRun.institution_id == institution_id,
            ImportRun.status == ImportStatus.running,
            ImportRun.updated_at < silent_since,
        )
        .values(status=ImportStatus.interrupted, finished_at=ImportRun.updated_at, message=message)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


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
