"""Integration services: what other systems send (payments, …) checked item by item and
recorded through the owning domains' services; idempotency keys kept for their time."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.enums import ContactSource, ContactStatus, ImportKind, ImportStatus, PaymentChannel
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.ingest.readers import RawRow
from recoup.ingest.rules import ContactRecord, Problem, columns_for, validate_contact
from recoup.ingest.service import ImportState, import_chunk, row_context
from recoup.institutions import repository as institutions
from recoup.institutions.settings import IntegrationSettings, settings_of
from recoup.integration import repository
from recoup.integration.schemas import PaymentIn, RiskScoreIn
from recoup.kit import jobs
from recoup.kit.clock import utcnow
from recoup.kit.crypto import blind_index
from recoup.kit.errors import NotFound, ValidationFailed
from recoup.kit.money import AmountRefused, parse_payable_amount
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.ingest import ImportRun
from recoup.models.institution import Institution
from recoup.portfolio import service as portfolio
from recoup.portfolio.schemas import PaymentInput

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
) -> AccountUpsert:
    """Insert or update accounts and their balances by external id, like a file import.

    Each item has the columns of an accounts file (``docs/import-formats.md``), checked by the
    same rules; valid items are written, bad ones are refused naming their field. The request
    is recorded as an import run (file name ``api``), so it shows on the imports page.
    """
    now = utcnow()
    run = ImportRun(
        institution_id=institution.id,
        kind=ImportKind.accounts,
        file_name="api",
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
        kind=ImportKind.accounts,
        context=row_context(institution, now=now),
    )
    rows = [_raw_row(index, item) for index, item in enumerate(items)]
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
    if result.inserted or result.updated:
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
            "kind": str(ImportKind.accounts),
            "file_name": "api",
            "rows_read": run.rows_read,
            "inserted": run.inserted,
            "updated": run.updated,
            "rejected": run.rejected,
        },
    )
    return AccountUpsert(outcomes, result.inserted, result.updated, result.unchanged, run.id)


ACCOUNT_FIELDS = frozenset(column.name for column in columns_for(ImportKind.accounts))


def _raw_row(index: int, item: Mapping[str, Any]) -> RawRow:
    """Return an item as the row an import file would give, or with its first problem."""
    values: dict[str, str | None] = {}
    problem: Problem | None = None
    for name, value in item.items():
        if name not in ACCOUNT_FIELDS:
            problem = problem or Problem(
                str(name)[:64], "", "unknown_field", f"not an account field; use {_known()}"
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


def _known() -> str:
    return ", ".join(sorted(ACCOUNT_FIELDS))
