"""Promises to pay: record, cancel, list and reconcile against payments (never commits)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any, cast

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.cases import service as cases
from recoup.cases.rules import CaseEvent
from recoup.contact.channels import Channel
from recoup.institutions.settings import settings_of
from recoup.kit import clock, events
from recoup.kit.clock import utcnow
from recoup.kit.errors import Conflict, NotFound, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.kit.text import require_text
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.workbench import Promise, PromiseStatus
from recoup.workbench import repository, rules


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What one reconciliation run did: promises looked at and how they ended up."""

    as_of: date
    examined: int = 0
    kept: int = 0
    partially_kept: int = 0
    broken: int = 0
    pending: int = 0
    escalated_account_ids: tuple[int, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        """Return the counts by outcome (for the audit trail, the CLI and the API)."""
        return {
            "examined": self.examined,
            "kept": self.kept,
            "partially_kept": self.partially_kept,
            "broken": self.broken,
            "pending": self.pending,
            "escalated": len(self.escalated_account_ids),
        }


def local_today(institution: Institution) -> date:
    """Return today's date in the institution's time zone."""
    return clock.local_today(institution.timezone)


def record_promise(
    session: Session,
    *,
    institution: Institution,
    account: Account,
    terms: rules.PromiseTerms,
    actor: str,
    user_id: int | None = None,
    note: str | None = None,
    today: date | None = None,
) -> Promise:
    """Record a pending promise on an account after checking it (audited ``promise.record``)."""
    note = require_text("note", note) if note else note
    if account.institution_id != institution.id:
        raise NotFound(f"no account {account.id}")
    locked = repository.lock_account(session, institution_id=institution.id, account_id=account.id)
    if locked is None:  # pragma: no cover - the caller just loaded it
        raise NotFound(f"no account {account.id}")
    facts = rules.AccountFacts(
        status=str(locked.status),
        balance=locked.balance,
        currency=locked.currency,
        has_pending_promise=repository.has_pending_promise(
            session, institution_id=institution.id, account_id=locked.id
        ),
    )
    today = today or local_today(institution)
    problems = rules.promise_problems(
        terms, facts, today=today, settings=promise_settings(institution)
    )
    _raise_for(problems)
    promise = Promise(
        institution_id=institution.id,
        account_id=locked.id,
        debtor_id=locked.debtor_id,
        amount=terms.amount,
        currency=terms.currency,
        promised_on=today,
        due_date=terms.due_date,
        channel=Channel(terms.channel),
        status=PromiseStatus.pending,
        paid_amount=0,
        created_by_id=user_id,
        created_by=actor[:64],
        note=(note or "").strip()[:500] or None,
    )
    session.add(promise)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="promise.record",
        object_type="promise",
        object_id=promise.id,
        institution_id=institution.id,
        details={
            "account_id": locked.id,
            "amount": terms.amount,
            "currency": terms.currency,
            "due_date": terms.due_date.isoformat(),
            "channel": terms.channel,
        },
    )
    _move_case(
        session,
        institution_id=institution.id,
        account=locked,
        event=CaseEvent.PROMISE_MADE,
        actor=actor,
    )
    events.emit(
        session,
        institution_id=institution.id,
        type="promise.created",
        data={"promise_id": promise.id, "account_id": locked.id},
    )
    return promise


def _move_case(
    session: Session, *, institution_id: int, account: Account, event: CaseEvent, actor: str
) -> None:
    """Move the account's case for a promise (opening it for a delinquent account)."""
    case = cases.case_for_account(
        session,
        institution_id=institution_id,
        account_id=account.id,
        debtor_id=account.debtor_id,
        status=str(account.status),
        days_past_due=account.days_past_due,
        actor=actor,
    )
    cases.apply_to_case(session, case, event, actor=actor)


def reopen_promises_kept_by(
    session: Session, *, institution: Institution, account_id: int, paid_at: datetime, amount: int
) -> int:
    """Open again the promises a reversed payment had counted toward; return how many.

    A promise of the account whose window (its day to its due date plus the grace days)
    holds the payment loses the amount: still pending, it just counts less; kept or partly
    kept, it is pending again, and the next reconciliation keeps or breaks it on the
    payments that stand. A broken promise stays broken.
    """
    grace = promise_settings(institution).grace_days
    reopened = 0
    for promise in repository.promises_of_account(
        session,
        institution_id=institution.id,
        account_id=account_id,
        statuses=(PromiseStatus.pending, PromiseStatus.kept, PromiseStatus.partially_kept),
    ):
        start = clock.start_of_day(promise.promised_on, institution.timezone)
        end = clock.start_of_day(promise.due_date + timedelta(days=grace + 1), institution.timezone)
        if not start <= paid_at < end:
            continue
        promise.paid_amount = max(promise.paid_amount - amount, 0)
        if promise.status != PromiseStatus.pending:
            promise.status = PromiseStatus.pending
            promise.resolved_at = None
            reopened += 1
    return reopened


def promise_settings(institution: Institution) -> rules.PromiseSettings:
    """Return the institution's promise horizon and grace days."""
    section = settings_of(institution).workbench
    return rules.PromiseSettings(
        horizon_days=section.promise_horizon_days, grace_days=section.promise_grace_days
    )


def _raise_for(problems: list[rules.Problem]) -> None:
    if not problems:
        return
    errors = [{"field": p.field, "code": p.code, "message": p.message} for p in problems]
    field_problems = [p for p in problems if p.code != "pending_exists"]
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    if field_problems:
        raise ValidationFailed(detail, errors=errors)
    raise Conflict(detail, errors=errors)


def cancel_promise(
    session: Session, *, institution: Institution, promise: Promise, actor: str
) -> Promise:
    """Cancel a pending promise (audited ``promise.cancel``); resolved ones stay as they are."""
    if promise.institution_id != institution.id:
        raise NotFound(f"no promise {promise.id}")
    if promise.status != PromiseStatus.pending:
        raise Conflict(
            f"promise {promise.id} is {promise.status}, not pending: only a pending promise "
            "can be cancelled"
        )
    promise.status = PromiseStatus.cancelled
    promise.resolved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="promise.cancel",
        object_type="promise",
        object_id=promise.id,
        institution_id=institution.id,
        details={"account_id": promise.account_id},
    )
    account = session.get(Account, promise.account_id)
    assert account is not None
    _move_case(
        session,
        institution_id=institution.id,
        account=account,
        event=CaseEvent.PROMISE_CANCELLED,
        actor=actor,
    )
    return promise


def account_promises(
    session: Session, *, institution_id: int, account_id: int, page: PageRequest
) -> Page[Promise]:
    """Return one page of an account's promises, the latest due first."""
    return repository.account_promises_page(
        session, institution_id=institution_id, account_id=account_id, page=page
    )


def reconcile_promises(
    session: Session,
    *,
    institution: Institution,
    as_of: date,
    actor: str,
    now: datetime | None = None,
) -> ReconcileResult:
    """Match payments to the institution's pending promises as of a date (set-based).

    The date must be sane (see ``rules.reconcile_date_problems``): not after the institution's
    today, not before its first promise.

    One query reads the pending promises, one the payments on their accounts; the changes
    are written in one bulk update. Running it again for the same date changes nothing.
    """
    now = now or utcnow()
    _raise_for(
        rules.reconcile_date_problems(
            as_of,
            today=clock.local_today(institution.timezone, now=now + clock.CLOCK_SKEW),
            first_promised_on=repository.first_promised_on(session, institution_id=institution.id),
        )
    )
    grace = promise_settings(institution).grace_days
    promises = repository.open_promises(session, institution_id=institution.id, as_of=as_of)
    if not promises:
        return ReconcileResult(as_of=as_of)
    starts = {row[0]: clock.start_of_day(row[3], institution.timezone) for row in promises}
    # A window ends with its last grace day, and never after the as-of date.
    ends = {
        row[0]: clock.start_of_day(
            min(row[4] + timedelta(days=grace), as_of) + timedelta(days=1), institution.timezone
        )
        for row in promises
    }
    paid: defaultdict[int, int] = defaultdict(int)
    for promise_id, paid_at, amount in repository.payments_toward_open_promises(
        session,
        institution_id=institution.id,
        as_of=as_of,
        since=min(starts.values()),
        until=max(ends.values()),
    ):
        moment = paid_at if paid_at.tzinfo is not None else paid_at.replace(tzinfo=UTC)
        if starts[promise_id] <= moment < ends[promise_id]:
            paid[promise_id] += int(amount)

    counts = {rules.KEPT: 0, rules.PARTIALLY_KEPT: 0, rules.BROKEN: 0, rules.PENDING: 0}
    resolved: list[dict[str, Any]] = []
    progressed: list[dict[str, Any]] = []
    for promise_id, _account_id, amount, _promised_on, due_date, paid_before in promises:
        total = paid[promise_id]
        status = rules.reconcile(
            amount=int(amount), paid=total, due_date=due_date, as_of=as_of, grace_days=grace
        )
        counts[status] += 1
        change = {"promise_id": promise_id, "paid_amount": total, "updated_at": now}
        if status != rules.PENDING:
            resolved.append(change | {"status": status, "resolved_at": now})
        elif total != paid_before:
            progressed.append(change)
    session.flush()
    repository.update_promises(session, resolved=resolved, progressed=progressed)
    # The rows changed underneath the session: loaded promises must be read again.
    session.expire_all()
    changes = len(resolved) + len(progressed)
    accounts_of: dict[Any, int] = {row[0]: row[1] for row in promises}
    moves = [
        (
            accounts_of[change["promise_id"]],
            CaseEvent.PROMISE_KEPT if change["status"] == rules.KEPT else CaseEvent.PROMISE_BROKEN,
        )
        for change in resolved
    ]
    cases.apply_to_accounts(session, institution_id=institution.id, events=moves, actor=actor)
    for change in resolved:
        events.emit(
            session,
            institution_id=institution.id,
            type="promise.kept" if change["status"] == rules.KEPT else "promise.broken",
            data={
                "promise_id": cast(int, change["promise_id"]),
                "account_id": accounts_of[change["promise_id"]],
                "status": str(change["status"]),
            },
        )

    escalated: list[int] = []
    if counts[rules.BROKEN]:
        history = repository.resolved_history_of_accounts_broken_at(
            session, institution_id=institution.id, resolved_at=now
        )
        for account_id, rows in groupby(history, key=lambda row: row[0]):
            if rules.should_escalate([str(row[1]) for row in rows]):
                escalated.append(int(account_id))
    result = ReconcileResult(
        as_of=as_of,
        examined=len(promises),
        kept=counts[rules.KEPT],
        partially_kept=counts[rules.PARTIALLY_KEPT],
        broken=counts[rules.BROKEN],
        pending=counts[rules.PENDING],
        escalated_account_ids=tuple(escalated),
    )
    if changes:
        audit.record(
            session,
            actor=actor,
            action="promise.reconcile",
            object_type="institution",
            object_id=institution.id,
            institution_id=institution.id,
            details={"as_of": as_of.isoformat(), **result.counts()},
        )
    return result
