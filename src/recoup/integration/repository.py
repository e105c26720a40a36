"""Integration queries: idempotency keys past their time, accounts a caller names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recoup.identity.principal import Principal
from recoup.identity.scoping import scoped
from recoup.kit.clock import utcnow
from recoup.models.account import Account, Payment
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.integration import ExternalRiskScore, IdempotencyRecord

T = TypeVar("T")


def prune_idempotency_keys(
    session: Session, *, institution_id: int | None, before: datetime
) -> int:
    """Delete one institution's (or the platform's) keys used before ``before``; return how many."""
    owner = (
        IdempotencyRecord.institution_id.is_(None)
        if institution_id is None
        else IdempotencyRecord.institution_id == institution_id
    )
    result = session.execute(
        delete(IdempotencyRecord).where(owner, IdempotencyRecord.created_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class VisibleAccounts:
    """The accounts of a request the caller may see: external id by id, and id by external id."""

    by_id: dict[int, str]
    by_external_id: dict[str, int]


def visible_accounts(
    session: Session, *, principal: Principal, account_ids: set[int], external_ids: set[str]
) -> VisibleAccounts:
    """Return which of these accounts (by id or external id) ``principal`` may see."""
    by_id: dict[int, str] = {}
    by_external_id: dict[str, int] = {}
    query = scoped(select(Account.id, Account.external_id), Account, principal)
    for batch in _batches(sorted(account_ids)):
        for row in session.execute(query.where(Account.id.in_(batch))):
            by_id[row.id] = row.external_id
    for names in _batches(sorted(external_ids)):
        for row in session.execute(query.where(Account.external_id.in_(names))):
            by_external_id[row.external_id] = row.id
    return VisibleAccounts(by_id, by_external_id)


def payment_accounts(
    session: Session, *, institution_id: int, external_ids: set[str]
) -> dict[str, int]:
    """Return the account id of each of the institution's payments with these external ids."""
    found: dict[str, int] = {}
    for batch in _batches(sorted(external_ids)):
        rows = session.execute(
            select(Payment.external_id, Payment.account_id).where(
                Payment.institution_id == institution_id, Payment.external_id.in_(batch)
            )
        )
        found.update((row.external_id, row.account_id) for row in rows)
    return found


def _batches(values: list[T], size: int = 500) -> list[list[T]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def debtor_contact_by_value(
    session: Session, *, debtor_id: int, kind: str, value_index: str
) -> ContactPoint | None:
    """Return the debtor's contact point of ``kind`` with this value (by its keyed hash)."""
    return session.scalars(
        select(ContactPoint)
        .where(
            ContactPoint.debtor_id == debtor_id,
            ContactPoint.kind == kind,
            ContactPoint.value_index == value_index,
        )
        .order_by(ContactPoint.id)
        .limit(1)
    ).first()


def own_points_of_kind(session: Session, *, debtor_id: int, kind: str) -> list[ContactPoint]:
    """Return the debtor's own (not third-party) contact points of ``kind``."""
    return list(
        session.scalars(
            select(ContactPoint)
            .where(
                ContactPoint.debtor_id == debtor_id,
                ContactPoint.kind == kind,
                ContactPoint.third_party.is_(False),
            )
            .order_by(ContactPoint.id)
        )
    )


def upsert_risk_score(
    session: Session,
    *,
    institution_id: int,
    account_id: int,
    source: str,
    score: Decimal,
    grade: str | None,
    reason_codes: list[str],
    scored_at: datetime,
    received_by: str,
) -> tuple[ExternalRiskScore, str]:
    """Store one score; return it and whether it was created, updated or unchanged."""
    row = session.scalars(
        select(ExternalRiskScore).where(
            ExternalRiskScore.account_id == account_id,
            ExternalRiskScore.source == source,
            ExternalRiskScore.scored_at == scored_at,
        )
    ).first()
    if row is None:
        row = ExternalRiskScore(
            institution_id=institution_id,
            account_id=account_id,
            source=source,
            score=score,
            grade=grade,
            reason_codes=reason_codes,
            scored_at=scored_at,
            received_by=received_by[:128],
        )
        session.add(row)
        session.flush()
        return row, "created"
    if (Decimal(row.score), row.grade, list(row.reason_codes or [])) == (
        score,
        grade,
        reason_codes,
    ):
        return row, "unchanged"
    row.score, row.grade, row.reason_codes = score, grade, reason_codes
    row.received_at, row.received_by = utcnow(), received_by[:128]
    session.flush()
    return row, "updated"


def latest_risk_scores(
    session: Session, *, institution_id: int, account_ids: list[int]
) -> dict[int, dict[str, Decimal]]:
    """Return each account's newest score per source (for scoring features)."""
    newest = (
        select(
            ExternalRiskScore.account_id,
            ExternalRiskScore.source,
            func.max(ExternalRiskScore.scored_at).label("scored_at"),
        )
        .where(ExternalRiskScore.institution_id == institution_id)
        .group_by(ExternalRiskScore.account_id, ExternalRiskScore.source)
        .subquery()
    )
    found: dict[int, dict[str, Decimal]] = {}
    for batch in _batches(sorted(account_ids)):
        rows = session.execute(
            select(ExternalRiskScore.account_id, ExternalRiskScore.source, ExternalRiskScore.score)
            .join(
                newest,
                (newest.c.account_id == ExternalRiskScore.account_id)
                & (newest.c.source == ExternalRiskScore.source)
                & (newest.c.scored_at == ExternalRiskScore.scored_at),
            )
            .where(ExternalRiskScore.account_id.in_(batch))
        )
        for account_id, source, score in rows:
            found.setdefault(account_id, {})[source] = Decimal(score)
    return found


def existing_debtor_external_ids(
    session: Session, *, institution_id: int, external_ids: list[str]
) -> set[str]:
    """Return which of ``external_ids`` are debtors of the institution already."""
    found: set[str] = set()
    for batch in _batches(sorted(set(external_ids))):
        query = select(Debtor.external_id).where(
            Debtor.institution_id == institution_id, Debtor.external_id.in_(batch)
        )
        found.update(session.scalars(query))
    return found


def account_with_debtor(
    session: Session, *, institution_id: int, external_id: str
) -> tuple[Account, str] | None:
    """Return the institution's account with ``external_id`` and its debtor's external id."""
    query = (
        select(Account, Debtor.external_id)
        .join(Debtor, Debtor.id == Account.debtor_id)
        .where(Account.institution_id == institution_id, Account.external_id == external_id)
    )
    row = session.execute(query).first()
    return None if row is None else (row[0], row[1])


def event_record(session: Session, *, caller: str, key: str) -> IdempotencyRecord | None:
    """Return the stored outcome of an inbound event already handled, if any."""
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.caller == caller, IdempotencyRecord.key == key
    )
    return session.scalars(query).first()


def claim_event(
    session: Session,
    *,
    institution_id: int,
    caller: str,
    key: str,
    fingerprint: str,
    path: str,
) -> IdempotencyRecord | None:
    """Insert the event's record before handling it; None when another request holds it."""
    record = IdempotencyRecord(
        institution_id=institution_id,
        caller=caller,
        key=key,
        fingerprint=fingerprint,
        method="EVENT",
        path=path,
        response_headers={},
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return None
    return record
