"""What the product holds of each account's past, read once for a simulation's starting state."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from recoup.models.account import Payment
from recoup.models.cases import Case
from recoup.models.plans import PaymentPlan, PlanInstalment
from recoup.models.workbench import Promise, PromiseStatus

# Plans whose instalments the product expects (one awaiting approval holds the case as well).
OPEN_PLANS = ("active", "pending_approval")
KEPT_PROMISES = (PromiseStatus.kept.value, PromiseStatus.partially_kept.value)


def account_history(session: Session, *, institution_id: int, as_of: date) -> dict[str, Any]:
    """Per account id: payments on record, broken promises, the open promise, the active plan.

    ``paid`` maps an account to the date of its last payment; ``broken`` to its promises broken
    in a row (since its last kept one, as a strategy's escalation counts them); ``promise`` to
    (earliest due date, amount still owed) of its pending promises; ``plan`` to (next
    instalment date, mean instalment, instalments left) of its open plans' instalments falling
    due on ``as_of`` or later.
    """
    paid = {
        account: at.date()
        for account, at in session.execute(
            select(Payment.account_id, func.max(Payment.paid_at))
            .where(
                Payment.institution_id == institution_id,
                Payment.amount > 0,
                Payment.reversed_at.is_(None),
            )
            .group_by(Payment.account_id)
        )
    }
    last_kept = (
        select(Promise.account_id.label("account_id"), func.max(Promise.due_date).label("due"))
        .where(
            Promise.institution_id == institution_id,
            Promise.status.in_(KEPT_PROMISES),
        )
        .group_by(Promise.account_id)
        .subquery()
    )
    broken = {
        account: int(count)
        for account, count in session.execute(
            select(Promise.account_id, func.count(Promise.id))
            .outerjoin(last_kept, last_kept.c.account_id == Promise.account_id)
            .where(
                Promise.institution_id == institution_id,
                Promise.status == PromiseStatus.broken.value,
                or_(last_kept.c.due.is_(None), Promise.due_date > last_kept.c.due),
            )
            .group_by(Promise.account_id)
        )
    }
    promise = {
        account: (due, int(owed or 0))
        for account, due, owed in session.execute(
            select(
                Promise.account_id,
                func.min(Promise.due_date),
                func.sum(Promise.amount - Promise.paid_amount),
            )
            .where(
                Promise.institution_id == institution_id,
                Promise.status == PromiseStatus.pending.value,
            )
            .group_by(Promise.account_id)
        )
    }
    plan = {
        account: (due, float(amount or 0), int(left))
        for account, due, amount, left in session.execute(
            select(
                PaymentPlan.account_id,
                func.min(PlanInstalment.due_on),
                func.avg(PlanInstalment.amount),
                func.count(PlanInstalment.id),
            )
            .join(PlanInstalment, PlanInstalment.plan_id == PaymentPlan.id)
            .where(
                PaymentPlan.institution_id == institution_id,
                PaymentPlan.status.in_(OPEN_PLANS),
                PlanInstalment.due_on >= as_of,
            )
            .group_by(PaymentPlan.account_id)
        )
    }
    return {"paid": paid, "broken": broken, "promise": promise, "plan": plan}


def case_debtors(session: Session, *, institution_id: int) -> dict[int, int]:
    """Each live case's debtor (case id → debtor id)."""
    rows = session.execute(
        select(Case.id, Case.live_debtor_id).where(
            Case.institution_id == institution_id, Case.live_debtor_id.is_not(None)
        )
    )
    return {case_id: int(debtor_id) for case_id, debtor_id in rows if debtor_id is not None}
