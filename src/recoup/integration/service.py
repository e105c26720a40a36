"""Integration services: what other systems send (payments, …) checked item by item and
recorded through the owning domains' services; idempotency keys kept for their time."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.enums import (
    AccountStatus,
    ContactSource,
    ContactStatus,
    ImportKind,
    ImportStatus,
    PaymentChannel,
    Product,
)
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.ingest.readers import RawRow
from recoup.ingest.rules import (
    ACCOUNT_FACT_DATES,
    ContactRecord,
    Problem,
    columns_for,
    validate_contact,
)
from recoup.ingest.service import ImportState, import_chunk, row_context
from recoup.institutions import repository as institutions
from recoup.institutions.settings import IntegrationSettings, settings_of
from recoup.integration import fineract, repository
from recoup.integration.schemas import PaymentIn, ReversalIn, RiskScoreIn
from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.kit.crypto import blind_index
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.money import AmountRefused, parse_payable_amount, to_decimal
from recoup.models.account import Account
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.ingest import ImportRun
from recoup.models.institution import Institution
from recoup.portfolio import service as portfolio
from recoup.portfolio.schemas import PaymentInput, ReversalInput

PAYMENT_CHANNELS = tuple(channel.value for channel in PaymentChannel)
CASES_SYNC = "cases.sync"


def prune_idempotency_keys(session: Session, *, now: datetime | None = None) -> int:
    """Forget the idempotency keys each institution keeps no longer; return how many."""
    now = now or utcnow()
    pruned = 0
    for institution in institutions.list_all(session):
        days = settings_of(institution).integration.idempotency_key_days
        pruned += repository.prune_idempotency_keys(
            session, institution_id=institution.id, before=now - timedelta(days=days)
        )
    platform_days = IntegrationSettings().idempotency_key_days
    pruned += repository.prune_idempotency_keys(
        session, institution_id=None, before=now - timedelta(days=platform_days)
    )
    return pruned


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What became of one item of an inbound request."""

    index: int
    external_id: str | None
    status: str
    id: int | None = None
    errors: tuple[ItemProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """One field of one item that was refused, and why."""

    field: str
    message: str
    code: str | None = None


def _schema_problems(error: ValidationError) -> tuple[ItemProblem, ...]:
    return tuple(
        ItemProblem(
            field=".".join(str(part) for part in item["loc"]) or "item",
            message=item["msg"].removeprefix("Value error, "),
            code=str(item["type"]),
        )
        for item in error.errors()
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def record_payments(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    items: Sequence[Mapping[str, Any]],
) -> list[ItemOutcome]:
    """Record payments sent by another system: each item checked and recorded on its own.

    An item names its account by ``account_external_id`` or ``account_id``; an account the
    caller may not see is refused like one that does not exist. Valid items are recorded
    through ``portfolio.service.record_payments`` (idempotent by ``external_id``).
    """
    outcomes: dict[int, ItemOutcome] = {}
    checked: list[tuple[int, PaymentIn]] = []
    for index, raw in enumerate(items):
        try:
            payment = PaymentIn.model_validate(raw)
        except ValidationError as error:
            external_id = _text(raw.get("external_id"))
            outcomes[index] = ItemOutcome(
                index, external_id, "rejected", errors=_schema_problems(error)
            )
            continue
        problem = _payment_problem(payment)
        if problem is not None:
            outcomes[index] = ItemOutcome(index, payment.external_id, "rejected", errors=(problem,))
            continue
        checked.append((index, payment))

    found = _accounts(session, principal, [payment for _index, payment in checked])
    inputs: list[tuple[int, PaymentInput]] = []
    for (index, payment), account in zip(checked, found, strict=True):
        if isinstance(account, ItemProblem):
            outcomes[index] = ItemOutcome(index, payment.external_id, "rejected", errors=(account,))
            continue
        account_external_id = account[1]
        inputs.append(
            (
                index,
                PaymentInput(
                    external_id=payment.external_id,
                    account_external_id=account_external_id,
                    amount=parse_payable_amount(payment.amount, payment.currency),
                    currency=payment.currency,
                    paid_at=payment.paid_at,
                    channel=payment.channel,
                ),
            )
        )
    recorded = portfolio.record_payments(
        session,
        institution=institution,
        payments=[payment for _index, payment in inputs],
        actor=principal.actor,
    )
    for (index, sent), outcome in zip(inputs, recorded, strict=True):
        if outcome.status == "rejected":
            outcomes[index] = ItemOutcome(
                index,
                sent.external_id,
                "rejected",
                errors=(
                    ItemProblem(outcome.field or "item", outcome.reason or "refused", outcome.code),
                ),
            )
        else:
            outcomes[index] = ItemOutcome(
                index, sent.external_id, str(outcome.status), id=outcome.payment_id
            )
    return [outcomes[index] for index in range(len(items))]


# How far ahead of the server's clock a reversal's time may be (the sender's clock drifts).
CLOCK_SKEW = timedelta(minutes=5)


def reverse_payments(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    items: Sequence[Mapping[str, Any]],
) -> list[ItemOutcome]:
    """Reverse payments another system reports reversed: each item checked and done on its own.

    An item names the payment by its ``external_id``; a payment on an account the caller may
    not see (another institution's included) is refused like one never recorded. Valid items
    are reversed through ``portfolio.service.reverse_payments``: reversing a reversed payment
    again is a ``duplicate``.
    """
    now = utcnow()
    outcomes: dict[int, ItemOutcome] = {}
    checked: list[tuple[int, ReversalIn]] = []
    for index, raw in enumerate(items):
        try:
            reversal = ReversalIn.model_validate(raw)
        except ValidationError as error:
            external_id = _text(raw.get("external_id"))
            outcomes[index] = ItemOutcome(
                index, external_id, "rejected", errors=_schema_problems(error)
            )
            continue
        if reversal.reversed_at is not None and reversal.reversed_at > now + CLOCK_SKEW:
            problem = ItemProblem(
                "reversed_at",
                "is in the future; send when the payment was reversed, or leave it out for now",
                "future",
            )
            outcomes[index] = _rejected(index, reversal.external_id, problem)
            continue
        checked.append((index, reversal))

    owners = repository.payment_accounts(
        session,
        institution_id=institution.id,
        external_ids={reversal.external_id for _index, reversal in checked},
    )
    visible = repository.visible_accounts(
        session, principal=principal, account_ids=set(owners.values()), external_ids=set()
    )
    inputs: list[tuple[int, ReversalInput]] = []
    for index, reversal in checked:
        if owners.get(reversal.external_id) not in visible.by_id:
            problem = ItemProblem(
                "external_id",
                f"no payment {reversal.external_id} in your scope; send the external_id "
                "the payment was recorded with",
                "not_found",
            )
            outcomes[index] = _rejected(index, reversal.external_id, problem)
            continue
        inputs.append(
            (
                index,
                ReversalInput(
                    external_id=reversal.external_id,
                    reversed_at=reversal.reversed_at,
                    reason=reversal.reason,
                ),
            )
        )
    reversed_ = portfolio.reverse_payments(
        session,
        institution=institution,
        reversals=[reversal for _index, reversal in inputs],
        actor=principal.actor,
    )
    for (index, sent), outcome in zip(inputs, reversed_, strict=True):
        if outcome.status == "rejected":
            problem = ItemProblem(
                outcome.field or "external_id",
                outcome.reason or "refused",
                outcome.code or "not_found",
            )
            outcomes[index] = _rejected(index, sent.external_id, problem)
        else:
            outcomes[index] = ItemOutcome(
                index, sent.external_id, str(outcome.status), id=outcome.payment_id
            )
    return [outcomes[index] for index in range(len(items))]


def _rejected(index: int, external_id: str, problem: ItemProblem) -> ItemOutcome:
    return ItemOutcome(index, external_id, "rejected", errors=(problem,))


class _NamesAccount(Protocol):
    account_id: int | None
    account_external_id: str | None


def _accounts(
    session: Session, principal: Principal, items: Sequence[_NamesAccount]
) -> list[tuple[int, str] | ItemProblem]:
    """Return each item's account (id, external id) if the caller may see it, else a problem."""
    visible = repository.visible_accounts(
        session,
        principal=principal,
        account_ids={item.account_id for item in items if item.account_id is not None},
        external_ids={item.account_external_id for item in items if item.account_external_id},
    )
    found: list[tuple[int, str] | ItemProblem] = []
    for item in items:
        if item.account_id is not None and item.account_id in visible.by_id:
            found.append((item.account_id, visible.by_id[item.account_id]))
        elif item.account_id is None and item.account_external_id in visible.by_external_id:
            external_id = str(item.account_external_id)
            found.append((visible.by_external_id[external_id], external_id))
        else:
            field = "account_id" if item.account_id is not None else "account_external_id"
            wanted = item.account_id or item.account_external_id
            found.append(ItemProblem(field, f"no account {wanted} in your scope", "not_found"))
    return found


def _account_problem(item: _NamesAccount) -> ItemProblem | None:
    if (item.account_id is None) == (item.account_external_id is None):
        return ItemProblem(
            "account_external_id",
            "name the account by account_external_id or by account_id (one of them)",
            "account_missing",
        )
    return None


def _payment_problem(payment: PaymentIn) -> ItemProblem | None:
    problem = _account_problem(payment)
    if problem is not None:
        return problem
    if payment.channel not in PAYMENT_CHANNELS:
        return ItemProblem(
            "channel", f"unknown channel; use one of {', '.join(PAYMENT_CHANNELS)}", "bad_channel"
        )
    try:
        parse_payable_amount(payment.amount, payment.currency)
    except AmountRefused as refusal:
        field = "currency" if refusal.code == "bad_currency" else "amount"
        return ItemProblem(field, str(refusal), refusal.code)
    return None


@dataclass(frozen=True, slots=True)
class ContactChange:
    """The contact point a CRM sent (new or found again) and the ones it superseded."""

    contact_point: ContactPoint
    created: bool
    superseded: tuple[int, ...]


def change_contact_point(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    debtor_id: int,
    kind: str,
    value: str,
    relation: str = "self",
    contact_name: str | None = None,
    external_id: str | None = None,
    replaces_contact_point_id: int | None = None,
    supersede_same_kind: bool = True,
    verified: bool = False,
) -> ContactChange:
    """Record a contact point the CRM sent; the one it replaces is superseded (kept, audited).

    The new point is checked and normalised like an imported one. It supersedes
    ``replaces_contact_point_id`` or, by default, the debtor's own points of the same kind,
    at once: the gate, the workspace and queued messages stop using them. The same value
    sent again finds the existing point and makes it current again.
    """
    debtor = get_scoped(session, Debtor, debtor_id, principal)
    replaced = (
        get_scoped(session, ContactPoint, replaces_contact_point_id, principal)
        if replaces_contact_point_id is not None
        else None
    )
    if replaced is not None and replaced.debtor_id != debtor.id:
        raise NotFound(f"no contact point {replaces_contact_point_id} of debtor {debtor.id}")
    record = _checked_contact(
        institution,
        debtor=debtor,
        kind=kind,
        value=value,
        relation=relation,
        contact_name=contact_name,
        external_id=external_id,
        verified=verified,
    )
    value_index = blind_index(record.value, context="contact_points.value")
    point = repository.debtor_contact_by_value(
        session, debtor_id=debtor.id, kind=record.kind, value_index=value_index
    )
    created = point is None
    now = utcnow()
    if point is None:
        point = ContactPoint(
            institution_id=institution.id,
            external_id=record.external_id,
            debtor_id=debtor.id,
            kind=record.kind,
            value=record.value,
            value_index=value_index,
            relation=record.relation,
            third_party=record.third_party,
            contact_name=record.contact_name,
            status=record.status,
            source=ContactSource.crm,
            timezone=record.timezone,
            timezone_source=record.timezone_source,
            verified_at=now if verified else None,
        )
        session.add(point)
    else:
        # Sent again: current again, and never less verified than it was.
        if verified or point.status != ContactStatus.valid:
            point.status = ContactStatus(record.status)
        point.source = ContactSource.crm
        point.verified_at = now if verified else point.verified_at
    session.flush()
    targets = (
        [replaced]
        if replaced is not None
        else repository.own_points_of_kind(session, debtor_id=debtor.id, kind=record.kind)
        if supersede_same_kind and not record.third_party
        else []
    )
    superseded = tuple(
        target.id for target in targets if target.id != point.id and _supersede(target)
    )
    audit.record(
        session,
        actor=principal.actor,
        action="contact_point.crm_change",
        object_type="contact_point",
        object_id=point.id,
        institution_id=institution.id,
        details={
            "debtor_id": debtor.id,
            "kind": str(record.kind),
            "created": created,
            "superseded": list(superseded),
        },
    )
    return ContactChange(point, created, superseded)


def _supersede(point: ContactPoint) -> bool:
    if point.status in (ContactStatus.superseded, ContactStatus.invalid):
        return False
    point.status = ContactStatus.superseded
    return True


def _checked_contact(
    institution: Institution,
    *,
    debtor: Debtor,
    kind: str,
    value: str,
    relation: str,
    contact_name: str | None,
    external_id: str | None,
    verified: bool,
) -> ContactRecord:
    raw: dict[str, str | None] = {
        "external_id": external_id or f"crm-{uuid.uuid4().hex[:24]}",
        "debtor_external_id": debtor.external_id,
        "kind": kind,
        "value": value,
        "relation": relation,
        "contact_name": contact_name,
        "status": ContactStatus.valid if verified else ContactStatus.unverified,
        "source": ContactSource.crm,
    }
    checked = validate_contact(raw, row_context(institution))
    if isinstance(checked, list):
        errors = [
            {"field": problem.field, "message": problem.reason, "code": problem.code}
            for problem in checked
        ]
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
        raise ValidationFailed(detail, errors=errors)
    return checked


def record_risk_scores(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    items: Sequence[Mapping[str, Any]],
) -> list[ItemOutcome]:
    """Store scores other systems gave accounts (one per account, source and time; audited).

    The same score sent again is ``unchanged``; another value for the same account, source
    and time replaces it (``updated``).
    """
    outcomes: dict[int, ItemOutcome] = {}
    checked: list[tuple[int, RiskScoreIn]] = []
    for index, raw in enumerate(items):
        try:
            score = RiskScoreIn.model_validate(raw)
        except ValidationError as error:
            outcomes[index] = ItemOutcome(index, None, "rejected", errors=_schema_problems(error))
            continue
        problem = _account_problem(score)
        if problem is not None:
            outcomes[index] = ItemOutcome(index, None, "rejected", errors=(problem,))
            continue
        checked.append((index, score))
    found = _accounts(session, principal, [score for _index, score in checked])
    stored = 0
    for (index, score), account in zip(checked, found, strict=True):
        if isinstance(account, ItemProblem):
            outcomes[index] = ItemOutcome(index, None, "rejected", errors=(account,))
            continue
        account_id, external_id = account
        row, status = repository.upsert_risk_score(
            session,
            institution_id=institution.id,
            account_id=account_id,
            source=score.source,
            score=Decimal(score.score),
            grade=score.grade,
            reason_codes=[code[:32] for code in score.reason_codes],
            scored_at=score.scored_at,
            received_by=principal.actor,
        )
        stored += status != "unchanged"
        outcomes[index] = ItemOutcome(index, external_id, status, id=row.id)
    if stored:
        audit.record(
            session,
            actor=principal.actor,
            action="risk_scores.record",
            object_type="institution",
            object_id=institution.id,
            institution_id=institution.id,
            details={"stored": stored, "sources": sorted({s.source for _i, s in checked})},
        )
    return [outcomes[index] for index in range(len(items))]


@dataclass(frozen=True, slots=True)
class AccountUpsert:
    """What an accounts upsert did: per-item outcomes, counts and the import run recording it."""

    outcomes: list[ItemOutcome]
    inserted: int
    updated: int
    unchanged: int
    import_run_id: int


def upsert_accounts(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    items: Sequence[Mapping[str, Any]],
    file_name: str = "api",
) -> AccountUpsert:
    """Insert or update accounts and their balances by external id, like a file import.

    Each item has the columns of an accounts file (``docs/import-formats.md``), checked by the
    same rules; valid items are written, bad ones are refused naming their field. The request
    is recorded as an import run (file name ``api``), so it shows on the imports page.
    """
    return upsert_rows(
        session,
        institution=institution,
        principal=principal,
        kind=ImportKind.accounts,
        items=items,
        file_name=file_name,
    )


def upsert_rows(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    kind: ImportKind,
    items: Sequence[Mapping[str, Any]],
    file_name: str,
) -> AccountUpsert:
    """Write rows of an import kind (the columns of its file) as one recorded import run."""
    now = utcnow()
    run = ImportRun(
        institution_id=institution.id,
        kind=kind,
        file_name=file_name,
        file_format="json",
        encoding=None,
        status=ImportStatus.running,
        actor=principal.actor[:128],
        started_at=now,
        ignored_columns=[],
        reject_counts={},
    )
    session.add(run)
    session.flush()
    state = ImportState(
        run=run,
        institution=institution,
        kind=kind,
        context=row_context(institution, now=now),
    )
    known = frozenset(column.name for column in columns_for(kind))
    rows = [_raw_row(index, item, known) for index, item in enumerate(items)]
    result = import_chunk(session, state=state, rows=rows)
    refused: dict[int, list[ItemProblem]] = {}
    for number, problem in result.problems:
        refused.setdefault(number, []).append(
            ItemProblem(problem.field, problem.reason, problem.code)
        )
    outcomes = [
        ItemOutcome(
            index,
            _text(item.get("external_id")),
            "rejected" if index in refused else "accepted",
            errors=tuple(refused.get(index, ())),
        )
        for index, item in enumerate(items)
    ]
    run.rows_read = result.rows_read
    run.inserted, run.updated, run.unchanged = result.inserted, result.updated, result.unchanged
    run.rejected = result.rejected
    run.reject_counts = dict(result.reject_counts())
    run.status = ImportStatus.completed
    run.finished_at = utcnow()
    if kind == ImportKind.accounts and (result.inserted or result.updated):
        jobs.enqueue_soon(
            session,
            CASES_SYNC,
            {"institution_id": institution.id},
            coalesce=f"{CASES_SYNC}@{institution.id}",
            institution_id=institution.id,
        )
    audit.record(
        session,
        actor=principal.actor,
        action="import.run",
        object_type="import_run",
        object_id=run.id,
        institution_id=institution.id,
        details={
            "kind": str(kind),
            "file_name": file_name,
            "rows_read": run.rows_read,
            "inserted": run.inserted,
            "updated": run.updated,
            "rejected": run.rejected,
        },
    )
    return AccountUpsert(outcomes, result.inserted, result.updated, result.unchanged, run.id)


def _raw_row(index: int, item: Mapping[str, Any], known: frozenset[str]) -> RawRow:
    """Return an item as the row an import file would give, or with its first problem."""
    values: dict[str, str | None] = {}
    problem: Problem | None = None
    for name, value in item.items():
        if name not in known:
            problem = problem or Problem(
                str(name)[:64], "", "unknown_field", f"not a field here; use {_known(known)}"
            )
        elif isinstance(value, float | bool):
            problem = problem or Problem(
                name,
                str(value),
                "bad_type",
                "send amounts as decimal strings and counts as integers",
            )
        elif value is None or isinstance(value, str | int):
            values[name] = None if value is None else str(value)
        else:
            problem = problem or Problem(name, "", "bad_type", "send a string, an integer or null")
    return RawRow(number=index, values=values, problem=problem)


def _known(known: frozenset[str]) -> str:
    return ", ".join(sorted(known))


# --- Apache Fineract -----------------------------------------------------------------------

FINERACT_EVENTS_PATH = "/api/v1/integrations/fineract/events"


@dataclass(frozen=True, slots=True)
class LoanOutcome:
    """What became of one Fineract loan: its account, status, payments, errors."""

    index: int
    loan_id: int | None
    external_id: str | None
    status: str  # accepted | rejected
    payments: dict[str, int] = field(default_factory=dict)
    errors: tuple[ItemProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class FineractImport:
    """A batch of Fineract loans imported: per-loan outcomes and counts."""

    loans: list[LoanOutcome]
    accounts_inserted: int
    accounts_updated: int
    debtors_created: int
    payments: dict[str, int]
    # Reversed repayments by outcome: reversed, duplicate (already), not_recorded.
    reversals: dict[str, int] = field(default_factory=dict)


def record_reversals(
    session: Session, *, institution: Institution, items: Sequence[Mapping[str, str]], actor: str
) -> list[str]:
    """Reverse the payments of repayments another system reversed (``fineract.map_reversal``
    items); return each one's outcome: ``reversed``, ``duplicate`` (reversed before),
    ``not_recorded`` (Recoup never recorded the payment, so nothing is undone) or ``rejected``
    (dated before the payment was made)."""
    outcomes = portfolio.reverse_payments(
        session,
        institution=institution,
        reversals=[
            ReversalInput(
                external_id=item["external_id"],
                reversed_at=datetime.fromisoformat(item["reversed_at"]),
                reason=item["reason"],
            )
            for item in items
        ],
        actor=actor,
    )
    return [
        "not_recorded"
        if outcome.status == "rejected" and outcome.code == "not_found"
        else str(outcome.status)
        for outcome in outcomes
    ]


def import_fineract_loans(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    loans: Sequence[Mapping[str, Any]],
    product: Product = Product.consumer_loan,
    file_name: str = "fineract",
) -> FineractImport:
    """Import Fineract loans: their clients as new debtors, the loans as accounts, their
    repayments as payments (idempotent by transaction) and their reversed repayments as
    reversals of the payments recorded; Fineract's balances stand at the end.

    A loan Recoup cannot map is refused naming its field; the others are written.
    """
    zone = institution.timezone
    today = utcnow().astimezone(ZoneInfo(zone)).date()
    outcomes: dict[int, LoanOutcome] = {}
    mapped: list[tuple[int, fineract.LoanMapping]] = []
    for index, loan in enumerate(loans):
        try:
            mapped.append(
                (index, fineract.map_loan(loan, today=today, timezone=zone, product=product))
            )
        except fineract.FineractMapError as error:
            loan_id = loan.get("id") if isinstance(loan.get("id"), int) else None
            outcomes[index] = LoanOutcome(
                index, loan_id, None, "rejected", errors=(ItemProblem(error.field, error.message),)
            )
    debtors = {m.debtor["external_id"]: m.debtor for _i, m in mapped if m.debtor["external_id"]}
    existing = repository.existing_debtor_external_ids(
        session, institution_id=institution.id, external_ids=[str(key) for key in debtors]
    )
    new_debtors = [row for key, row in debtors.items() if key not in existing]
    created = 0
    if new_debtors:
        done = upsert_rows(
            session,
            institution=institution,
            principal=principal,
            kind=ImportKind.debtors,
            items=new_debtors,
            file_name=file_name,
        )
        created = done.inserted
    accounts = [m.account for _i, m in mapped]
    first = upsert_accounts(
        session, institution=institution, principal=principal, items=accounts, file_name=file_name
    )
    written: list[tuple[int, fineract.LoanMapping]] = []
    for (index, mapping), outcome in zip(mapped, first.outcomes, strict=True):
        if outcome.status == "rejected":
            outcomes[index] = LoanOutcome(
                index, mapping.loan_id, outcome.external_id, "rejected", errors=outcome.errors
            )
        else:
            written.append((index, mapping))
    payment_items = [payment for _i, mapping in written for payment in mapping.payments]
    recorded = record_payments(
        session, institution=institution, principal=principal, items=payment_items
    )
    counts: dict[str, int] = {}
    by_account: dict[str, dict[str, int]] = {}
    for item, result in zip(payment_items, recorded, strict=True):
        counts[result.status] = counts.get(result.status, 0) + 1
        tally = by_account.setdefault(item["account_external_id"], {})
        tally[result.status] = tally.get(result.status, 0) + 1
    reversal_items = [reversal for _i, mapping in written for reversal in mapping.reversals]
    reversed_outcomes = record_reversals(
        session, institution=institution, items=reversal_items, actor=principal.actor
    )
    reversals: dict[str, int] = {}
    for status in reversed_outcomes:
        reversals[status] = reversals.get(status, 0) + 1
    undone = {
        str(mapping.account["external_id"])
        for (_i, mapping), status in _reversal_owners(written, reversed_outcomes)
        if status == "reversed"
    }
    updated = first.updated
    if counts.get("applied") or undone:
        # Recoup's waterfall applied the new repayments and undid the reversed ones;
        # Fineract's own balances stand.
        paid = {key for key, tally in by_account.items() if tally.get("applied")} | undone
        again = upsert_accounts(
            session,
            institution=institution,
            principal=principal,
            items=[m.account for _i, m in written if m.account["external_id"] in paid],
            file_name=file_name,
        )
        updated += again.updated
    for index, mapping in written:
        external_id = str(mapping.account["external_id"])
        outcomes[index] = LoanOutcome(
            index, mapping.loan_id, external_id, "accepted", by_account.get(external_id, {})
        )
    return FineractImport(
        loans=[outcomes[index] for index in range(len(loans))],
        accounts_inserted=first.inserted,
        accounts_updated=updated,
        debtors_created=created,
        payments=counts,
        reversals=reversals,
    )


def _reversal_owners(
    written: Sequence[tuple[int, fineract.LoanMapping]], outcomes: Sequence[str]
) -> list[tuple[tuple[int, fineract.LoanMapping], str]]:
    """Pair each reversal's outcome (in the order the loans list them) with its loan."""
    owners = [item for item in written for _reversal in item[1].reversals]
    return list(zip(owners, outcomes, strict=True))


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What a Fineract event did: applied, ignored (not for Recoup) or a duplicate."""

    key: str
    type: str
    status: str  # applied | ignored | duplicate
    account_external_id: str | None = None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "type": self.type,
            "status": self.status,
            "account_external_id": self.account_external_id,
            "detail": self.detail,
        }


def receive_fineract_event(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    message: Mapping[str, Any],
) -> EventOutcome:
    """Apply one Fineract external event (``MessageV1``, payload as JSON), once per event.

    The event's ``idempotencyKey`` (else its source and id) is remembered for the
    institution's ``integration.idempotency_key_days``: the same event again is answered
    ``duplicate`` and changes nothing. A refused event is not remembered.
    """
    try:
        event = fineract.parse_event(message)
    except fineract.FineractMapError as error:
        raise _refused(error) from None
    caller = f"fineract:{institution.id}"
    key = f"event:{event.key}"
    previous = repository.event_record(session, caller=caller, key=key)
    if previous is None:
        digest = hashlib.sha256(
            json.dumps(message, sort_keys=True, default=str).encode()
        ).hexdigest()
        previous = repository.claim_event(
            session,
            institution_id=institution.id,
            caller=caller,
            key=key,
            fingerprint=digest,
            path=FINERACT_EVENTS_PATH,
        )
        if previous is not None:
            record = previous
            outcome = _apply_event(
                session, institution=institution, principal=principal, event=event
            )
            record.status_code = 200
            record.response_body = json.dumps(outcome.as_json())
            return outcome
        previous = repository.event_record(session, caller=caller, key=key)
    stored = json.loads(previous.response_body) if previous and previous.response_body else {}
    return EventOutcome(
        event.key,
        event.type,
        "duplicate",
        stored.get("account_external_id"),
        f"already {stored.get('status', 'received')}",
    )


def _refused(error: fineract.FineractMapError) -> ValidationFailed:
    field_name = f"body.{error.field}"
    return ValidationFailed(
        f"{field_name}: {error.message}",
        errors=[{"field": field_name, "message": error.message}],
    )


def _apply_event(
    session: Session, *, institution: Institution, principal: Principal, event: fineract.Event
) -> EventOutcome:
    zone = institution.timezone
    today = event.business_date or utcnow().astimezone(ZoneInfo(zone)).date()
    try:
        if event.schema == fineract.LOAN_SCHEMA:
            return _loan_event(session, institution=institution, principal=principal, event=event)
        if event.schema == fineract.DELINQUENCY_SCHEMA:
            change = fineract.map_delinquency(event.data, business_date=today)
            return _delinquency_event(
                session, institution=institution, principal=principal, event=event, change=change
            )
        if event.schema == fineract.CLIENT_SCHEMA:
            return _client_event(session, institution=institution, principal=principal, event=event)
        if event.schema == fineract.ADJUSTMENT_SCHEMA:
            reversal, replacement = fineract.map_adjustment(event.data, timezone=zone, today=today)
            return _adjustment_event(
                session,
                institution=institution,
                principal=principal,
                event=event,
                reversal=reversal,
                replacement=replacement,
            )
        if event.schema == fineract.TRANSACTION_SCHEMA:
            reversal = fineract.map_reversal(event.data, timezone=zone, today=today)
            if reversal is not None:
                return _adjustment_event(
                    session,
                    institution=institution,
                    principal=principal,
                    event=event,
                    reversal=reversal,
                    replacement=None,
                )
            payment = None
            if event.type in fineract.REPAYMENT_EVENTS:
                payment = fineract.map_transaction(event.data, timezone=zone)
            if payment is None:
                return EventOutcome(event.key, event.type, "ignored", detail="not a repayment")
            (result,) = record_payments(
                session, institution=institution, principal=principal, items=[payment]
            )
            _refuse_outcome(result, prefix="data.")
            return EventOutcome(
                event.key, event.type, "applied", payment["account_external_id"], result.status
            )
    except fineract.FineractMapError as error:
        raise _refused(fineract.FineractMapError(f"data.{error.field}", error.message)) from None
    return EventOutcome(
        event.key, event.type, "ignored", detail=f"Recoup does not read {event.schema}"
    )


def _adjustment_event(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    event: fineract.Event,
    reversal: Mapping[str, str] | None,
    replacement: dict[str, str] | None,
) -> EventOutcome:
    """A repayment Fineract reversed (undone, or adjusted into ``replacement``): its payment
    reversed, and the replacement recorded as a payment."""
    if reversal is None and replacement is None:
        return EventOutcome(event.key, event.type, "ignored", detail="not a repayment")
    details = []
    if reversal is not None:
        (status,) = record_reversals(
            session, institution=institution, items=[reversal], actor=principal.actor
        )
        details.append(f"reversal {status}")
    account = None
    if replacement is not None:
        (result,) = record_payments(
            session, institution=institution, principal=principal, items=[replacement]
        )
        _refuse_outcome(result, prefix="data.newTransactionDetail.")
        account = replacement["account_external_id"]
        details.append(f"replacement {result.status}")
    return EventOutcome(event.key, event.type, "applied", account, "; ".join(details))


def _refuse_outcome(outcome: ItemOutcome, *, prefix: str) -> None:
    if outcome.status != "rejected":
        return
    errors = [
        {"field": f"body.{prefix}{problem.field}", "message": problem.message}
        for problem in outcome.errors
    ]
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    raise ValidationFailed(detail or "the event was refused", errors=errors)


def _loan_event(
    session: Session, *, institution: Institution, principal: Principal, event: fineract.Event
) -> EventOutcome:
    done = import_fineract_loans(
        session,
        institution=institution,
        principal=principal,
        loans=[event.data],
        file_name="fineract-event",
    )
    (loan,) = done.loans
    if loan.status == "rejected":
        _refuse_outcome(
            ItemOutcome(0, loan.external_id, "rejected", errors=loan.errors), prefix="data."
        )
    return EventOutcome(event.key, event.type, "applied", loan.external_id, "account upserted")


def _client_event(
    session: Session, *, institution: Institution, principal: Principal, event: fineract.Event
) -> EventOutcome:
    debtor = fineract.map_client(event.data)
    external_id = str(debtor["external_id"])
    known = repository.existing_debtor_external_ids(
        session, institution_id=institution.id, external_ids=[external_id]
    )
    if known:
        return EventOutcome(event.key, event.type, "ignored", detail=f"debtor {external_id} exists")
    done = upsert_rows(
        session,
        institution=institution,
        principal=principal,
        kind=ImportKind.debtors,
        items=[debtor],
        file_name="fineract-event",
    )
    (outcome,) = done.outcomes
    _refuse_outcome(outcome, prefix="data.")
    return EventOutcome(event.key, event.type, "applied", detail=f"debtor {external_id} created")


def _delinquency_event(
    session: Session,
    *,
    institution: Institution,
    principal: Principal,
    event: fineract.Event,
    change: fineract.Delinquency,
) -> EventOutcome:
    found = repository.account_with_debtor(
        session, institution_id=institution.id, external_id=change.account_external_id
    )
    if found is None:
        raise ValidationFailed(
            f"body.data.loanId: no account {change.account_external_id} here; "
            "import the loan first (recoup integrate fineract-import)",
            errors=[{"field": "body.data.loanId", "message": "unknown loan"}],
        )
    account, debtor_external_id = found
    if account.currency != change.currency:
        raise ValidationFailed(
            f"body.data.currency.code: the account is in {account.currency}, not {change.currency}",
            errors=[{"field": "body.data.currency.code", "message": "another currency"}],
        )
    row = _account_row(account, debtor_external_id)
    row["days_past_due"] = change.days_past_due
    row["overdue_amount"] = change.overdue_amount
    done = upsert_accounts(
        session,
        institution=institution,
        principal=principal,
        items=[row],
        file_name="fineract-event",
    )
    (outcome,) = done.outcomes
    _refuse_outcome(outcome, prefix="data.")
    detail = f"{change.days_past_due} days past due"
    if change.classification:
        detail += f" ({change.classification})"
    return EventOutcome(event.key, event.type, "applied", change.account_external_id, detail)


def _account_row(account: Account, debtor_external_id: str) -> dict[str, str | int | None]:
    """The accounts-file row that writes ``account`` back as it is."""

    def major(minor: int | None) -> str | None:
        return None if minor is None else format(to_decimal(minor, account.currency), "f")

    def day(value: date | None) -> str | None:
        return None if value is None else value.isoformat()

    row: dict[str, str | int | None] = {
        "external_id": account.external_id,
        "debtor_external_id": debtor_external_id,
        "product": str(account.product),
        "currency": account.currency,
        "credit_limit": major(account.credit_limit),
        "principal": major(account.principal),
        "interest": major(account.interest),
        "fees": major(account.fees),
        "penalty": major(account.penalty),
        "minimum_due": major(account.minimum_due),
        "due_date": day(account.due_date),
        "opened_on": day(account.opened_on),
        "charged_off_on": day(account.charged_off_on),
        **{name: day(getattr(account, name)) for name in ACCOUNT_FACT_DATES},
    }
    if account.status not in (AccountStatus.current, AccountStatus.delinquent):
        row["status"] = str(account.status)
    return row
