"""Import one chunk of rows, and build the data-quality report. Never commits.

An import chunk is checked row by row (``rules``), then written set-based: one IN
query for the rows it references, one for the rows that already exist, one
executemany upsert, one executemany for delinquency events and one for rejects.
Accounts on SQLite go further (``repository.write_accounts``): the chunk is loaded into
a staging table as plain tuples and compared, inserted, updated and given its
delinquency events by a handful of statements inside SQLite.
The caller (``runner.run_import``) commits after each chunk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Final

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from recoup.compliance.rulepack import load_pack
from recoup.enums import AccountStatus, ImportKind
from recoup.ingest import repository
from recoup.ingest.readers import RawRow
from recoup.ingest.rules import (
    IMPORT_HEARTBEAT_TIMEOUT,
    REGION_BY_JURISDICTION,
    VALIDATORS,
    AccountRecord,
    ContactRecord,
    DebtorRecord,
    PaymentRecord,
    Problem,
    Record,
    RowContext,
    SeenKeys,
    mask_for_report,
    pii_kinds,
    plain_account_values,
    storable,
    validate_account,
)
from recoup.institutions.repository import require_by_code
from recoup.kit.clock import utcnow
from recoup.kit.crypto import blind_index
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.masking import mask_phone
from recoup.models.account import Account
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.ingest import ImportRun
from recoup.models.institution import Institution
from recoup.portfolio.schemas import (
    PaymentInput,
    PaymentOutcome,
    ReversalInput,
    ReversalOutcome,
)
from recoup.portfolio.service import record_payments, reverse_payments

# Statuses an account file may move between on its own; the others (promised, on plan,
# legal…) are set inside Recoup and survive a file that leaves the status column blank.
_AGEING_STATUSES = frozenset({AccountStatus.current, AccountStatus.delinquent})
_ACCOUNT_FIELDS: Final = tuple(item.name for item in fields(AccountRecord))
_ACCOUNT_VALUES: Final = attrgetter(*_ACCOUNT_FIELDS)


@dataclass
class ChunkResult:
    """What one chunk did: counts, and the problems of its rejected rows."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[int, Problem]] = field(default_factory=list)
    # The stored rejects (masked values), for the reject report.
    reject_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({number for number, _problem in self.problems})

    def reject_counts(self) -> Counter[str]:
        """Return rejected rows per reason code (a row counts once per code)."""
        return Counter(code for _number, code in {(n, p.code) for n, p in self.problems})


@dataclass
class ImportState:
    """What carries from chunk to chunk of one file."""

    run: ImportRun
    institution: Institution
    kind: ImportKind
    context: RowContext
    seen: SeenKeys = field(default_factory=SeenKeys)


def interrupt_silent_runs(session: Session, *, institution: Institution) -> int:
    """Record the institution's imports whose process fell silent as interrupted."""
    return repository.interrupt_silent_runs(
        session,
        institution_id=institution.id,
        silent_since=utcnow() - IMPORT_HEARTBEAT_TIMEOUT,
        message=(
            "The importing process stopped without finishing (its last sign of life is the "
            "finish time). Rows committed before it are kept; import the file again — rows "
            "already imported count as unchanged"
        ),
    )


def row_context(institution: Institution, *, now: datetime | None = None) -> RowContext:
    """Return what rows of ``institution`` are judged against."""
    return RowContext(
        # A regional rule pack reads numbers and ids as its country does.
        region=REGION_BY_JURISDICTION.get(
            load_pack(str(institution.jurisdiction)).jurisdiction, "CN"
        ),
        currency=institution.currency,
        timezone=institution.timezone,
        now=now or utcnow(),
    )


@dataclass
class CheckedChunk:
    """A chunk after the row rules: the valid records (first occurrences) and the problems.

    Valid account rows travel in ``account_rows`` as ``(row number, *AccountRecord fields)``
    tuples instead of records: building a million frozen records (and pickling them to
    the writing process) cost more than checking the rows.
    """

    rows_read: int
    records: list[tuple[int, Record]]
    problems: list[tuple[int, Problem]]
    account_rows: list[tuple[Any, ...]] = field(default_factory=list)


def check_chunk(*, state: ImportState, rows: Sequence[RawRow]) -> CheckedChunk:
    """Apply the row rules and the in-file duplicate check to one chunk (no database)."""
    return check_rows(kind=state.kind, context=state.context, seen=state.seen, rows=rows)


def _duplicate(external_id: str) -> Problem:
    reason = f"external id {external_id} appears earlier in this file; the first is kept"
    return Problem("external_id", external_id, "duplicate_in_file", reason)


def _check_accounts(context: RowContext, seen: SeenKeys, rows: Sequence[RawRow]) -> CheckedChunk:
    """Check account rows into ``account_rows`` tuples (the clean ones without any record)."""
    problems: list[tuple[int, Problem]] = []
    valid: list[tuple[Any, ...]] = []
    for raw in rows:
        if raw.problem is not None:
            problems.append((raw.number, raw.problem))
            continue
        values = plain_account_values(raw.values, context)
        if values is None:
            checked = validate_account(raw.values, context)
            if isinstance(checked, list):
                problems.extend((raw.number, problem) for problem in checked)
                continue
            values = _ACCOUNT_VALUES(checked)
        valid.append((raw.number, *values))
    first = seen.first_time([row[1] for row in valid])
    unique = [row for row, is_first in zip(valid, first, strict=True) if is_first]
    if len(unique) < len(valid):
        problems.extend(
            (row[0], _duplicate(row[1]))
            for row, is_first in zip(valid, first, strict=True)
            if not is_first
        )
    return CheckedChunk(rows_read=len(rows), records=[], problems=problems, account_rows=unique)


def check_rows(
    *, kind: ImportKind, context: RowContext, seen: SeenKeys, rows: Sequence[RawRow]
) -> CheckedChunk:
    """Check one chunk of ``kind`` rows against ``context``, remembering ids in ``seen``."""
    if kind == ImportKind.accounts:
        return _check_accounts(context, seen, rows)
    validate = VALIDATORS[kind]
    problems: list[tuple[int, Problem]] = []
    valid: list[tuple[int, Record]] = []
    for raw in rows:
        if raw.problem is not None:
            problems.append((raw.number, raw.problem))
            continue
        checked = validate(raw.values, context)
        if isinstance(checked, list):
            problems.extend((raw.number, problem) for problem in checked)
        else:
            valid.append((raw.number, checked))

    # Within the file the first occurrence of an external id wins.
    first = seen.first_time([record.external_id for _number, record in valid])
    unique: list[tuple[int, Record]] = []
    for (number, record), is_first in zip(valid, first, strict=True):
        if is_first:
            unique.append((number, record))
        else:
            problems.append((number, _duplicate(record.external_id)))
    return CheckedChunk(rows_read=len(rows), records=unique, problems=problems)


def write_chunk(session: Session, *, state: ImportState, chunk: CheckedChunk) -> ChunkResult:
    """Write the valid records of a checked chunk and store its rejects."""
    result = ChunkResult(rows_read=chunk.rows_read, problems=list(chunk.problems))
    if state.kind == ImportKind.accounts:
        _write_accounts(session, state, account_rows(chunk), result)
    else:
        writer = {
            ImportKind.debtors: _write_debtors,
            ImportKind.contacts: _write_contacts,
            ImportKind.payments: _write_payments,
        }[state.kind]
        writer(session, state, chunk.records, result)
    result.reject_rows = _store_rejects(session, state, result.problems)
    return result


def account_rows(chunk: CheckedChunk) -> list[tuple[Any, ...]]:
    """Return the valid account rows of ``chunk`` as ``(row number, *AccountRecord fields)``."""
    rows = chunk.account_rows
    records = [
        (number, *_ACCOUNT_VALUES(record))
        for number, record in chunk.records
        if isinstance(record, AccountRecord)
    ]
    if records:
        rows = sorted([*rows, *records], key=lambda row: int(row[0]))
    return rows


def import_chunk(session: Session, *, state: ImportState, rows: Sequence[RawRow]) -> ChunkResult:
    """Validate and write one chunk of rows; store the rejects of the chunk."""
    return write_chunk(session, state=state, chunk=check_chunk(state=state, rows=rows))


def _store_rejects(
    session: Session, state: ImportState, problems: Sequence[tuple[int, Problem]]
) -> list[dict[str, Any]]:
    pii = pii_kinds(state.kind)
    rows = [
        {
            "institution_id": state.institution.id,
            "run_id": state.run.id,
            "row_number": number,
            "field": problem.field[:64],
            "value": mask_for_report(problem.value, pii.get(problem.field))[:256],
            "code": problem.code[:32],
            "reason": storable(problem.reason)[:500],
        }
        for number, problem in sorted(problems, key=lambda item: item[0])
    ]
    repository.insert_many(session, repository.rejects_table(), rows)
    return rows


def _classify(
    existing: dict[str, Row[Any]], external_id: str, values: dict[str, Any], compare: Sequence[str]
) -> str:
    stored = existing.get(external_id)
    if stored is None:
        return "inserted"
    for name in compare:
        old = getattr(stored, name)
        if isinstance(old, datetime):
            old = repository.aware(old)
        if old != values[name]:
            return "updated"
    return "unchanged"


def _write_debtors(
    session: Session, state: ImportState, rows: Sequence[tuple[int, Record]], result: ChunkResult
) -> None:
    institution_id = state.institution.id
    records = [record for _number, record in rows if isinstance(record, DebtorRecord)]
    existing = repository.existing_debtors(
        session,
        institution_id=institution_id,
        external_ids=[record.external_id for record in records],
    )
    now = utcnow()
    compare = repository.DEBTOR_COLUMNS
    to_write = []
    for record in records:
        values: dict[str, Any] = {
            "kind": record.kind,
            "name": record.name,
            "national_id": record.national_id,
            "national_id_index": blind_index(record.national_id, context="debtors.national_id")
            if record.national_id
            else None,
            "id_kind": record.id_kind,
            "birth_date": record.birth_date,
            "province": record.province,
            "city": record.city,
            "district": record.district,
            "timezone": record.timezone,
            "language": record.language,
            "employer": record.employer,
            **record.flags,
            "timezone_source": record.timezone_source,
        }
        outcome = _classify(existing, record.external_id, values, compare)
        _count(result, outcome)
        if outcome != "unchanged":
            values |= {
                "institution_id": institution_id,
                "external_id": record.external_id,
                "name_index": blind_index(record.name, context="debtors.name"),
                "created_at": now,
                "updated_at": now,
            }
            to_write.append(values)
    repository.upsert(
        session,
        repository.debtors_table(),
        to_write,
        update_columns=(*compare, "name_index", "updated_at"),
    )
    _write_inconvenient(session, institution_id, records)


def _write_inconvenient(
    session: Session, institution_id: int, records: Sequence[DebtorRecord]
) -> None:
    """Replace the inconvenient times and places of debtors whose row states them."""
    stating = [
        record
        for record in records
        if record.inconvenient_times is not None or record.inconvenient_places is not None
    ]
    if not stating:
        return
    ids = repository.ids_by_external_id(
        session,
        Debtor,
        institution_id=institution_id,
        external_ids=(record.external_id for record in stating),
    )
    windows: dict[int, list[dict[str, Any]]] = {}
    places: dict[int, list[str] | None] = {}
    for record in stating:
        debtor_id = ids[record.external_id]
        if record.inconvenient_times is not None:
            windows[debtor_id] = [
                {
                    "start_minute": window.start_minute,
                    "end_minute": window.end_minute,
                    "weekdays": None if window.weekdays is None else list(window.weekdays),
                }
                for window in record.inconvenient_times
            ]
        if record.inconvenient_places is not None:
            places[debtor_id] = sorted(str(place) for place in record.inconvenient_places) or None
    repository.replace_inconvenient(
        session, institution_id=institution_id, windows=windows, places=places
    )


def _count(result: ChunkResult, outcome: str) -> None:
    if outcome == "inserted":
        result.inserted += 1
    elif outcome == "updated":
        result.updated += 1
    else:
        result.unchanged += 1


def _with_debtors(
    session: Session, state: ImportState, records: Sequence[tuple[int, Any]], result: ChunkResult
) -> list[tuple[int, Any, int]]:
    """Return ``(row number, record, debtor id)`` of rows whose debtor exists; reject the rest."""
    debtors = repository.ids_by_external_id(
        session,
        Debtor,
        institution_id=state.institution.id,
        external_ids=(record.debtor_external_id for _number, record in records),
    )
    known = []
    for number, record in records:
        debtor_id = debtors.get(record.debtor_external_id)
        if debtor_id is None:
            result.problems.append((number, _unknown_debtor(record.debtor_external_id)))
        else:
            known.append((number, record, debtor_id))
    return known


def _write_contacts(
    session: Session, state: ImportState, rows: Sequence[tuple[int, Record]], result: ChunkResult
) -> None:
    institution_id = state.institution.id
    pairs = [(number, record) for number, record in rows if isinstance(record, ContactRecord)]
    existing = repository.existing_contacts(
        session,
        institution_id=institution_id,
        external_ids=[record.external_id for _n, record in pairs],
    )
    stored_consents = repository.contact_consents(
        session,
        institution_id=institution_id,
        contact_point_ids=[row.id for row in existing.values()],
    )
    now = utcnow()
    compare = repository.CONTACT_COLUMNS
    to_write = []
    consents: dict[str, dict[str, Any]] = {}
    for _number, record, debtor_id in _with_debtors(session, state, pairs, result):
        values: dict[str, Any] = {
            "debtor_id": debtor_id,
            "kind": record.kind,
            "value_index": blind_index(record.value, context="contact_points.value"),
            "relation": record.relation,
            "third_party": record.third_party,
            "contact_name": record.contact_name,
            "status": record.status,
            "source": record.source,
            "timezone": record.timezone,
            "timezone_source": record.timezone_source,
            "verified_at": record.verified_at,
        }
        consent = _consent_fields(record)
        outcome = _classify(existing, record.external_id, values, compare)
        if outcome == "unchanged":
            stored = stored_consents.get(existing[record.external_id].id, repository.NO_CONSENT)
            if any(stored[name] != consent[name] for name in repository.CONTACT_CONSENT_FIELDS):
                outcome = "updated"
        _count(result, outcome)
        if outcome != "unchanged":
            values |= {
                "institution_id": institution_id,
                "external_id": record.external_id,
                "value": record.value,
                "created_at": now,
                "updated_at": now,
            }
            to_write.append(values)
            consents[record.external_id] = consent
    repository.upsert(
        session,
        repository.contacts_table(),
        to_write,
        update_columns=(*compare, "value", "updated_at"),
    )
    # The flag columns become consent rows of the contact points just written.
    ids = repository.ids_by_external_id(
        session, ContactPoint, institution_id=institution_id, external_ids=consents
    )
    repository.replace_contact_consents(
        session,
        institution_id=institution_id,
        consents={ids[external_id]: fields for external_id, fields in consents.items()},
        actor=state.run.actor,
        now=now,
    )


def _consent_fields(record: ContactRecord) -> dict[str, Any]:
    """Return what a contact row says of consent; a date and source only go with a consent."""
    given = record.flags["consent_automated"]
    return {
        **record.flags,
        "consent_recorded_at": record.consent_recorded_at if given else None,
        "consent_source": record.consent_source if given else None,
    }


def _write_accounts(
    session: Session, state: ImportState, rows: list[tuple[Any, ...]], result: ChunkResult
) -> None:
    """Write account rows, ``(row number, *AccountRecord fields)``, set-based in the database."""
    written = repository.write_accounts(
        session,
        institution_id=state.institution.id,
        fields=_ACCOUNT_FIELDS,
        rows=rows,
        effective_at=state.run.started_at,
        recorded_at=utcnow(),
        ageing_statuses=_AGEING_STATUSES,
    )
    result.inserted += written.inserted
    result.updated += written.updated
    result.unchanged += written.unchanged
    result.problems.extend(
        (number, _unknown_debtor(value)) for number, value in written.unknown_debtors
    )


def _unknown_debtor(external_id: str) -> Problem:
    reason = f"no debtor with external id {external_id} here; import debtors first"
    return Problem("debtor_external_id", external_id, "unknown_debtor", reason)


def _write_payments(
    session: Session, state: ImportState, rows: Sequence[tuple[int, Record]], result: ChunkResult
) -> None:
    pairs = [(number, record) for number, record in rows if isinstance(record, PaymentRecord)]
    currencies = repository.account_currencies(
        session,
        institution_id=state.institution.id,
        external_ids=(
            record.account_external_id for _n, record in pairs if record.currency is None
        ),
    )
    inputs = [
        PaymentInput(
            external_id=record.external_id,
            account_external_id=record.account_external_id,
            amount=record.amount,
            currency=record.currency
            or currencies.get(record.account_external_id, state.context.currency),
            paid_at=record.paid_at,
            channel=record.channel,
        )
        for _number, record in pairs
    ]
    outcomes = record_payments(
        session, institution=state.institution, payments=inputs, actor=state.run.actor
    )
    reversals = _reverse_payments(session, state, pairs, outcomes)
    for (number, record), outcome in zip(pairs, outcomes, strict=True):
        reversal = reversals.get(number)
        if reversal is not None and reversal.status == "rejected":
            field_name = reversal.field or "reversed_at"
            result.problems.append(
                (
                    number,
                    Problem(
                        field_name,
                        str(record.reversed_at) if field_name == "reversed_at" else "",
                        reversal.code or "reversal_rejected",
                        reversal.reason or "the reversal was refused",
                    ),
                )
            )
        elif outcome.status == "applied":
            result.inserted += 1
        elif outcome.status == "duplicate":
            # A payment recorded before and reversed now is updated; reversed before, unchanged.
            if reversal is not None and reversal.status == "reversed":
                result.updated += 1
            else:
                result.unchanged += 1
        else:
            reason = outcome.reason or "the payment was refused"
            code = outcome.code or "payment_rejected"
            name = (
                "account_external_id"
                if code in {"unknown_account", "closed_account", "settled_account"}
                else "external_id"
            )
            value = (
                record.account_external_id if name == "account_external_id" else record.external_id
            )
            result.problems.append((number, Problem(name, value, code, reason)))


def _reverse_payments(
    session: Session,
    state: ImportState,
    pairs: Sequence[tuple[int, PaymentRecord]],
    outcomes: Sequence[PaymentOutcome],
) -> dict[int, ReversalOutcome]:
    """Reverse the payments whose rows carry ``reversed_at``; return each one's outcome by row.

    The row is the payment's own: recorded now or before, it is then reversed (once: the same
    row again is a duplicate reversal, nothing changes twice).
    """
    reversing = [
        (number, record)
        for (number, record), outcome in zip(pairs, outcomes, strict=True)
        if record.reversed_at is not None and outcome.status in {"applied", "duplicate"}
    ]
    if not reversing:
        return {}
    done = reverse_payments(
        session,
        institution=state.institution,
        reversals=[
            ReversalInput(
                external_id=record.external_id,
                reversed_at=record.reversed_at,
                reason=record.reversal_reason or "reversed",
            )
            for _number, record in reversing
        ],
        actor=state.run.actor,
    )
    return {number: outcome for (number, _record), outcome in zip(reversing, done, strict=True)}


# --- data quality ---------------------------------------------------------------------------

STALE_AFTER = timedelta(days=180)
DEBTOR_FIELDS = ("national_id", "birth_date", "province", "city", "employer")
CONTACT_FIELDS = ("verified_at", "timezone")
ACCOUNT_FIELDS = ("due_date", "opened_on", "credit_limit")


@dataclass(frozen=True, slots=True)
class SharedPhone:
    """One phone number found on several debtors (masked)."""

    phone: str
    debtors: int


@dataclass(frozen=True, slots=True)
class RejectReason:
    """Rejected-field problems of one code in the latest import of one kind."""

    kind: str
    code: str
    count: int
    example: str


@dataclass(frozen=True, slots=True)
class ImportRunSummary:
    """The latest import of one kind."""

    kind: str
    run_id: int
    file_name: str
    status: str
    finished_at: datetime | None
    rows_read: int
    rejected: int


@dataclass(frozen=True, slots=True)
class DataQualityReport:
    """The data-quality picture of one institution's portfolio."""

    institution: str
    generated_at: datetime
    debtors: int
    debtors_with_valid_self_contact: int
    valid_self_contact_share: float
    contact_points: int
    contacts_never_verified: int
    contacts_verified_over_180_days_ago: int
    shared_phone_numbers: int
    debtors_sharing_a_phone: int
    top_shared_phones: list[SharedPhone]
    missing_fields: dict[str, dict[str, int]]
    latest_imports: list[ImportRunSummary]
    rejects_by_reason: list[RejectReason]


def data_quality_report(
    session: Session, *, institution: Institution, now: datetime | None = None, top: int = 10
) -> DataQualityReport:
    """Measure how complete and trustworthy an institution's debtor and contact data is."""
    moment = now or utcnow()
    institution_id = institution.id
    debtors, reachable = repository.debtor_totals(session, institution_id=institution_id)
    contacts, never, stale = repository.contact_verification(
        session, institution_id=institution_id, stale_before=moment - STALE_AFTER
    )
    groups, sharing, top_groups = repository.shared_phone_groups(
        session, institution_id=institution_id, limit=top
    )
    runs = repository.latest_runs(session, institution_id=institution_id)
    kinds = {run.id: str(run.kind) for run in runs}
    rejects = repository.rejects_by_code(session, run_ids=list(kinds))
    return DataQualityReport(
        institution=institution.code,
        generated_at=moment,
        debtors=debtors,
        debtors_with_valid_self_contact=reachable,
        valid_self_contact_share=round(reachable / debtors, 4) if debtors else 0.0,
        contact_points=contacts,
        contacts_never_verified=never,
        contacts_verified_over_180_days_ago=stale,
        shared_phone_numbers=groups,
        debtors_sharing_a_phone=sharing,
        top_shared_phones=[
            SharedPhone(phone=mask_phone(value), debtors=count) for value, count in top_groups
        ],
        missing_fields={
            "debtors": repository.missing_by_column(
                session, Debtor, DEBTOR_FIELDS, institution_id=institution_id
            ),
            "contact_points": {
                **repository.missing_by_column(
                    session, ContactPoint, CONTACT_FIELDS, institution_id=institution_id
                ),
                "consent_recorded_at": repository.contacts_without_consent_date(
                    session, institution_id=institution_id
                ),
            },
            "accounts": repository.missing_by_column(
                session, Account, ACCOUNT_FIELDS, institution_id=institution_id
            ),
        },
        latest_imports=[
            ImportRunSummary(
                kind=str(run.kind),
                run_id=run.id,
                file_name=run.file_name,
                status=str(run.status),
                finished_at=repository.aware(run.finished_at),
                rows_read=run.rows_read,
                rejected=run.rejected,
            )
            for run in runs
        ],
        rejects_by_reason=[
            RejectReason(kind=kinds[run_id], code=code, count=count, example=example)
            for run_id, code, example, count in rejects
        ],
    )


def data_quality_report_for(
    session: Session, *, institution_id: int | None, institution_code: str | None
) -> DataQualityReport:
    """Return the report of the caller's institution; a platform admin names one by code."""
    if institution_id is None:
        if institution_code is None:
            raise ValidationFailed("name the institution: ?institution=CODE")
        return data_quality_report(session, institution=require_by_code(session, institution_code))
    institution = session.get(Institution, institution_id)
    if institution is None or institution_code not in (None, institution.code):
        raise NotFound(f"no institution {institution_code or institution_id} for this caller")
    return data_quality_report(session, institution=institution)
