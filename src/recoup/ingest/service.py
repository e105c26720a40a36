"""Import one chunk of rows, and build the data-quality report. Never commits.

An import chunk is checked row by row (``rules``), then written set-based: one IN
query for the rows it references, one for the rows that already exist, one
executemany upsert, one executemany for delinquency events and one for rejects.
The caller (``runner.run_import``) commits after each chunk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from recoup.ingest import repository
from recoup.ingest.readers import RawRow
from recoup.ingest.rules import (
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
    storable,
)
from recoup.institutions.repository import require_by_code
from recoup.kit.clock import utcnow
from recoup.kit.crypto import blind_index
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.masking import mask_phone
from recoup.models.account import Account, AccountStatus
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.ingest import ImportKind, ImportRun
from recoup.models.institution import Institution
from recoup.portfolio.schemas import PaymentInput
from recoup.portfolio.service import record_payments

# Statuses an account file may move between on its own; the others (promised, on plan,
# legal…) are set inside Recoup and survive a file that leaves the status column blank.
_AGEING_STATUSES = frozenset({AccountStatus.current, AccountStatus.delinquent})


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


def row_context(institution: Institution, *, now: datetime | None = None) -> RowContext:
    """Return what rows of ``institution`` are judged against."""
    return RowContext(
        region=REGION_BY_JURISDICTION.get(str(institution.jurisdiction), "CN"),
        currency=institution.currency,
        timezone=institution.timezone,
        now=now or utcnow(),
    )


@dataclass
class CheckedChunk:
    """A chunk after the row rules: the valid records (first occurrences) and the problems."""

    rows_read: int
    records: list[tuple[int, Record]]
    problems: list[tuple[int, Problem]]


def check_chunk(*, state: ImportState, rows: Sequence[RawRow]) -> CheckedChunk:
    """Apply the row rules and the in-file duplicate check to one chunk (no database)."""
    return check_rows(kind=state.kind, context=state.context, seen=state.seen, rows=rows)


def check_rows(
    *, kind: ImportKind, context: RowContext, seen: SeenKeys, rows: Sequence[RawRow]
) -> CheckedChunk:
    """Check one chunk of ``kind`` rows against ``context``, remembering ids in ``seen``."""
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
            reason = (
                f"external id {record.external_id} appears earlier in this file; the first is kept"
            )
            problems.append(
                (number, Problem("external_id", record.external_id, "duplicate_in_file", reason))
            )
    return CheckedChunk(rows_read=len(rows), records=unique, problems=problems)


def write_chunk(session: Session, *, state: ImportState, chunk: CheckedChunk) -> ChunkResult:
    """Write the valid records of a checked chunk and store its rejects."""
    result = ChunkResult(rows_read=chunk.rows_read, problems=list(chunk.problems))
    writer = {
        ImportKind.debtors: _write_debtors,
        ImportKind.contacts: _write_contacts,
        ImportKind.accounts: _write_accounts,
        ImportKind.payments: _write_payments,
    }[state.kind]
    writer(session, state, chunk.records, result)
    result.reject_rows = _store_rejects(session, state, result.problems)
    return result


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
            value = record.debtor_external_id
            reason = f"no debtor with external id {value} here; import debtors first"
            result.problems.append(
                (number, Problem("debtor_external_id", value, "unknown_debtor", reason))
            )
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
    now = utcnow()
    compare = repository.CONTACT_COLUMNS
    to_write = []
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
            "verified_at": record.verified_at,
            **record.flags,
            "consent_recorded_at": record.consent_recorded_at,
            "consent_source": record.consent_source,
        }
        outcome = _classify(existing, record.external_id, values, compare)
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
    repository.upsert(
        session,
        repository.contacts_table(),
        to_write,
        update_columns=(*compare, "value", "updated_at"),
    )


def _write_accounts(
    session: Session, state: ImportState, rows: Sequence[tuple[int, Record]], result: ChunkResult
) -> None:
    institution_id = state.institution.id
    pairs = [(number, record) for number, record in rows if isinstance(record, AccountRecord)]
    existing = repository.existing_accounts(
        session,
        institution_id=institution_id,
        external_ids=[record.external_id for _n, record in pairs],
    )
    now = utcnow()
    compare = repository.ACCOUNT_COLUMNS
    to_write: list[dict[str, Any]] = []
    # Accounts met for the first time skip the upsert's comparisons and dictionaries
    # where the backend allows a plain insert of tuples (see ``repository.insert_rows``).
    plain_inserts = repository.plain_inserts(session)
    new_accounts: list[tuple[Any, ...]] = []
    changed_state: dict[str, dict[str, Any] | None] = {}
    for _number, record, debtor_id in _with_debtors(session, state, pairs, result):
        stored = existing.get(record.external_id)
        if stored is None and plain_inserts:
            result.inserted += 1
            new_accounts.append(
                (
                    institution_id,
                    record.external_id,
                    debtor_id,
                    record.product,
                    record.currency,
                    record.credit_limit,
                    record.principal,
                    record.interest,
                    record.fees,
                    record.penalty,
                    record.minimum_due,
                    record.overdue_amount,
                    record.due_date,
                    record.days_past_due,
                    record.bucket,
                    record.status,
                    record.opened_on,
                    record.charged_off_on,
                    now,
                    now,
                )
            )
            changed_state[record.external_id] = None
            continue
        status = record.status
        if (
            stored is not None
            and record.status_given is False
            and stored.status not in _AGEING_STATUSES
        ):
            status = stored.status
        values: dict[str, Any] = {
            "debtor_id": debtor_id,
            "product": record.product,
            "currency": record.currency,
            "credit_limit": record.credit_limit,
            "principal": record.principal,
            "interest": record.interest,
            "fees": record.fees,
            "penalty": record.penalty,
            "minimum_due": record.minimum_due,
            "overdue_amount": record.overdue_amount,
            "due_date": record.due_date,
            "days_past_due": record.days_past_due,
            "bucket": record.bucket,
            "status": status,
            "opened_on": record.opened_on,
            "charged_off_on": record.charged_off_on,
        }
        outcome = _classify(existing, record.external_id, values, compare)
        _count(result, outcome)
        if outcome == "unchanged":
            continue
        values |= {
            "institution_id": institution_id,
            "external_id": record.external_id,
            "created_at": now,
            "updated_at": now,
        }
        to_write.append(values)
        if stored is None or stored.bucket != record.bucket or stored.status != status:
            changed_state[record.external_id] = values
    repository.upsert(
        session, repository.accounts_table(), to_write, update_columns=(*compare, "updated_at")
    )
    repository.insert_rows(
        session, repository.accounts_table(), repository.NEW_ACCOUNT_COLUMNS, new_accounts
    )
    if not changed_state or repository.insert_import_events(
        session,
        institution_id=institution_id,
        external_ids=list(changed_state),
        effective_at=state.run.started_at,
        recorded_at=now,
    ):
        return
    account_ids = repository.ids_by_external_id(
        session, Account, institution_id=institution_id, external_ids=changed_state
    )
    repository.insert_many(
        session,
        repository.events_table(),
        [
            {
                "institution_id": institution_id,
                "account_id": account_ids[external_id],
                "effective_at": state.run.started_at,
                "recorded_at": now,
                "days_past_due": values["days_past_due"],
                "bucket": values["bucket"],
                "status": values["status"],
                "balance": values["principal"]
                + values["interest"]
                + values["fees"]
                + values["penalty"],
                "cause": "import",
                "superseded": False,
            }
            for external_id, values in changed_state.items()
            if values is not None
        ],
    )


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
    for (number, record), outcome in zip(pairs, outcomes, strict=True):
        if outcome.status == "applied":
            result.inserted += 1
        elif outcome.status == "duplicate":
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


# --- data quality ---------------------------------------------------------------------------

STALE_AFTER = timedelta(days=180)
DEBTOR_FIELDS = ("national_id", "birth_date", "province", "city", "employer")
CONTACT_FIELDS = ("verified_at", "timezone", "consent_recorded_at")
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
            "contact_points": repository.missing_by_column(
                session, ContactPoint, CONTACT_FIELDS, institution_id=institution_id
            ),
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
