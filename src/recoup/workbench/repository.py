"""Queries of the workbench: promises of an account, open promises and the payments toward them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, Table, and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account, Payment
from recoup.models.workbench import Promise, PromiseStatus

RESOLVED_STATUSES = (PromiseStatus.kept, PromiseStatus.partially_kept, PromiseStatus.broken)


def lock_account(session: Session, *, institution_id: int, account_id: int) -> Account | None:
    """Return the account locked for update, so two promises cannot race past the pending check."""
    statement = (
        select(Account)
        .where(Account.institution_id == institution_id, Account.id == account_id)
        .with_for_update()
    )
    return session.execute(statement).scalar_one_or_none()


def has_pending_promise(session: Session, *, institution_id: int, account_id: int) -> bool:
    """Tell whether the account has a pending promise."""
    statement = select(Promise.id).where(
        Promise.institution_id == institution_id,
        Promise.account_id == account_id,
        Promise.status == PromiseStatus.pending,
    )
    return session.execute(statement.limit(1)).first() is not None


def get_promise(session: Session, *, institution_id: int, promise_id: int) -> Promise | None:
    """Return one promise of an institution, or None."""
    statement = select(Promise).where(
        Promise.institution_id == institution_id, Promise.id == promise_id
    )
    return session.execute(statement).scalar_one_or_none()


def account_promises_page(
    session: Session, *, institution_id: int, account_id: int, page: PageRequest
) -> Page[Promise]:
    """Return one page of an account's promises, the latest due first."""
    where = (Promise.institution_id == institution_id, Promise.account_id == account_id)
    total = session.execute(select(func.count()).select_from(Promise).where(*where)).scalar_one()
    statement = (
        select(Promise)
        .where(*where)
        .order_by(Promise.due_date.desc(), Promise.id.desc())
        .offset(page.offset)
        .limit(page.size)
    )
    items = list(session.execute(statement).scalars())
    return Page(items=items, total=int(total), page=page.page, size=page.size)


def first_promised_on(session: Session, *, institution_id: int) -> date | None:
    """Return the day the institution's first promise was made (``None`` without promises)."""
    statement = select(func.min(Promise.promised_on)).where(
        Promise.institution_id == institution_id
    )
    return session.execute(statement).scalar_one_or_none()


def open_promises(
    session: Session, *, institution_id: int, as_of: date
) -> Sequence[Row[int, int, int, date, date, int]]:
    """Return (id, account id, amount, promised on, due date, paid amount) of pending promises
    made on or before ``as_of``."""
    statement = (
        select(
            Promise.id,
            Promise.account_id,
            Promise.amount,
            Promise.promised_on,
            Promise.due_date,
            Promise.paid_amount,
        )
        .where(
            Promise.institution_id == institution_id,
            Promise.status == PromiseStatus.pending,
            Promise.promised_on <= as_of,
        )
        .order_by(Promise.id)
    )
    return session.execute(statement).all()


def promises_of_account(
    session: Session, *, institution_id: int, account_id: int, statuses: Sequence[str]
) -> list[Promise]:
    """Return an account's promises in these statuses."""
    return list(
        session.scalars(
            select(Promise).where(
                Promise.institution_id == institution_id,
                Promise.account_id == account_id,
                Promise.status.in_([str(status) for status in statuses]),
            )
        )
    )


def payments_toward_open_promises(
    session: Session, *, institution_id: int, as_of: date, since: datetime, until: datetime
) -> Sequence[Row[int, datetime, int]]:
    """Return (promise id, paid at, amount) of payments on accounts with a pending promise.

    ``since`` / ``until`` bound every open promise's window; each promise's own window is
    applied by the caller, which knows the institution's calendar.
    """
    statement = (
        select(Promise.id, Payment.paid_at, Payment.amount)
        .join(
            Payment,
            and_(
                Payment.account_id == Promise.account_id,
                Payment.institution_id == Promise.institution_id,
            ),
        )
        .where(
            Promise.institution_id == institution_id,
            Promise.status == PromiseStatus.pending,
            Promise.promised_on <= as_of,
            Payment.paid_at >= since,
            Payment.paid_at < until,
            Payment.reversed_at.is_(None),
        )
    )
    return session.execute(statement).all()


def update_promises(
    session: Session, *, resolved: list[dict[str, Any]], progressed: list[dict[str, Any]]
) -> None:
    """Write reconciliation results by promise id: one executemany per kind of change.

    ``resolved`` rows carry ``promise_id``, ``status``, ``paid_amount``, ``resolved_at`` and
    ``updated_at``; ``progressed`` rows (still pending) only the paid amount and time. Core
    statements with bound parameters keep 100k rows off the ORM's per-object bookkeeping.
    """
    table = Promise.__table__
    assert isinstance(table, Table)
    key = table.c.id == bindparam("promise_id")
    if resolved:
        statement = (
            update(table)
            .where(key)
            .values(
                status=bindparam("status"),
                paid_amount=bindparam("paid_amount"),
                resolved_at=bindparam("resolved_at"),
                updated_at=bindparam("updated_at"),
            )
        )
        session.execute(statement, resolved)
    if progressed:
        statement = (
            update(table)
            .where(key)
            .values(paid_amount=bindparam("paid_amount"), updated_at=bindparam("updated_at"))
        )
        session.execute(statement, progressed)


def resolved_history_of_accounts_broken_at(
    session: Session, *, institution_id: int, resolved_at: datetime
) -> Sequence[Row[int, PromiseStatus]]:
    """Return (account id, status) of the resolved promises of accounts with a promise broken at
    ``resolved_at``, oldest due first per account."""
    broken_now = select(Promise.account_id).where(
        Promise.institution_id == institution_id,
        Promise.status == PromiseStatus.broken,
        Promise.resolved_at == resolved_at,
    )
    statement = (
        select(Promise.account_id, Promise.status)
        .where(
            Promise.institution_id == institution_id,
            Promise.status.in_(RESOLVED_STATUSES),
            Promise.account_id.in_(broken_now),
        )
        .order_by(Promise.account_id, Promise.due_date, Promise.id)
    )
    return session.execute(statement).all()
