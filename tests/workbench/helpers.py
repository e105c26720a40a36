"""Test data for promises: a promise and a payment written straight to the tables."""

from __future__ import annotations

import itertools
from datetime import date, datetime

from sqlalchemy.orm import Session

from recoup.models.account import Account, Payment
from recoup.models.workbench import Promise, PromiseStatus

_counter = itertools.count(1)


def add_promise(
    session: Session,
    account: Account,
    *,
    amount: int,
    promised_on: date,
    due_date: date,
    status: PromiseStatus = PromiseStatus.pending,
    resolved_at: datetime | None = None,
) -> Promise:
    promise = Promise(
        institution_id=account.institution_id,
        account_id=account.id,
        debtor_id=account.debtor_id,
        amount=amount,
        currency=account.currency,
        promised_on=promised_on,
        due_date=due_date,
        channel="call",
        status=status,
        paid_amount=0,
        resolved_at=resolved_at,
        created_by="test",
    )
    session.add(promise)
    session.flush()
    return promise


def add_payment(session: Session, account: Account, *, amount: int, paid_at: datetime) -> Payment:
    payment = Payment(
        institution_id=account.institution_id,
        external_id=f"PAY-{next(_counter)}",
        account_id=account.id,
        amount=amount,
        currency=account.currency,
        paid_at=paid_at,
        applied_principal=amount,
    )
    session.add(payment)
    session.flush()
    return payment
