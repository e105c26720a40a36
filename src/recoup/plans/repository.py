"""Every query of payment plans, scoped by institution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.kit.pagination import Page, PageRequest
from recoup.models.account import Account, Payment
from recoup.models.plans import PaymentPlan, PlanInstalment

LIVE = ("pending_approval", "active")


def live_plan_for_account(
    session: Session, *, institution_id: int, account_id: int
) -> PaymentPlan | None:
    """The account's plan waiting for approval or running, if any."""
    return session.execute(
        select(PaymentPlan).where(
            PaymentPlan.institution_id == institution_id,
            PaymentPlan.account_id == account_id,
            PaymentPlan.status.in_(LIVE),
        )
    ).scalar_one_or_none()


def lock_account(session: Session, *, institution_id: int, account_id: int) -> Account | None:
    """Lock the account (one plan decision at a time per account)."""
    return session.execute(
        select(Account)
        .where(Account.institution_id == institution_id, Account.id == account_id)
        .with_for_update()
    ).scalar_one_or_none()


def instalments(session: Session, *, plan_ids: list[int]) -> dict[int, list[PlanInstalment]]:
    """Each plan's instalments in order."""
    found: dict[int, list[PlanInstalment]] = {plan_id: [] for plan_id in plan_ids}
    if not plan_ids:
        return found
    rows = session.execute(
        select(PlanInstalment)
        .where(PlanInstalment.plan_id.in_(plan_ids))
        .order_by(PlanInstalment.plan_id, PlanInstalment.number)
    ).scalars()
    for row in rows:
        found[row.plan_id].append(row)
    return found


def account_plans(
    session: Session, *, institution_id: int, account_id: int, page: PageRequest
) -> Page[PaymentPlan]:
    """An account's plans, newest first."""
    where = (PaymentPlan.institution_id == institution_id, PaymentPlan.account_id == account_id)
    total = session.scalar(select(func.count()).select_from(PaymentPlan).where(*where)) or 0
    items = (
        session.execute(
            select(PaymentPlan)
            .where(*where)
            .order_by(PaymentPlan.id.desc())
            .offset(page.offset)
            .limit(page.size)
        )
        .scalars()
        .all()
    )
    return Page(items=list(items), total=total, page=page.page, size=page.size)


def active_plans(session: Session, *, institution_id: int) -> list[PaymentPlan]:
    """The institution's running plans, locked for reconciliation."""
    return list(
        session.execute(
            select(PaymentPlan)
            .where(PaymentPlan.institution_id == institution_id, PaymentPlan.status == "active")
            .order_by(PaymentPlan.id)
            .with_for_update()
        )
        .scalars()
        .all()
    )


def plans_of_account(
    session: Session, *, institution_id: int, account_id: int, statuses: Sequence[str]
) -> list[PaymentPlan]:
    """Return an account's plans in these statuses."""
    return list(
        session.scalars(
            select(PaymentPlan).where(
                PaymentPlan.institution_id == institution_id,
                PaymentPlan.account_id == account_id,
                PaymentPlan.status.in_(list(statuses)),
            )
        )
    )


def payments_since(
    session: Session, *, institution_id: int, account_ids: list[int], since: datetime
) -> dict[int, list[tuple[datetime, int]]]:
    """Payments on each account at or after a moment: (paid at, amount applied)."""
    found: dict[int, list[tuple[datetime, int]]] = {account_id: [] for account_id in account_ids}
    if not account_ids:
        return found
    rows = session.execute(
        select(Payment.account_id, Payment.paid_at, Payment.amount).where(
            Payment.institution_id == institution_id,
            Payment.account_id.in_(account_ids),
            Payment.paid_at >= since,
            Payment.reversed_at.is_(None),
        )
    )
    for account_id, paid_at, amount in rows:
        found[account_id].append((paid_at, int(amount)))
    return found
