"""Queries of call scripts and of what came of the contacts they were used in, by institution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recoup.contact.rules import AttemptStatus
from recoup.enums import SCRIPT_KIND
from recoup.models.account import Account
from recoup.models.cases import Case, CaseAccount, CaseEvent
from recoup.models.compliance import MessageTemplate, TemplateStatus
from recoup.models.contact import ContactAttempt
from recoup.models.plans import PaymentPlan, PlanInstalment
from recoup.models.workbench import Promise, PromiseStatus


def scripts(
    session: Session,
    *,
    institution_id: int,
    status: TemplateStatus | None = None,
    situation: str | None = None,
    locale: str | None = None,
) -> Sequence[MessageTemplate]:
    """Return the institution's call scripts, optionally by status, situation and language."""
    statement = select(MessageTemplate).where(
        MessageTemplate.institution_id == institution_id, MessageTemplate.kind == SCRIPT_KIND
    )
    if status is not None:
        statement = statement.where(MessageTemplate.status == status)
    if situation is not None:
        statement = statement.where(MessageTemplate.situation == situation)
    if locale is not None:
        statement = statement.where(MessageTemplate.locale == locale)
    return session.execute(statement.order_by(MessageTemplate.id)).scalars().all()


def get_script(session: Session, *, institution_id: int, script_id: int) -> MessageTemplate | None:
    """Return one call script of the institution, whatever its review state."""
    return session.execute(
        select(MessageTemplate).where(
            MessageTemplate.institution_id == institution_id,
            MessageTemplate.id == script_id,
            MessageTemplate.kind == SCRIPT_KIND,
        )
    ).scalar_one_or_none()


def case_balance(session: Session, *, institution_id: int, case_id: int) -> list[tuple[str, int]]:
    """Return the outstanding balance of a case's current accounts, per currency."""
    rows = session.execute(
        select(
            Account.currency,
            func.coalesce(
                func.sum(Account.principal + Account.interest + Account.fees + Account.penalty), 0
            ),
        )
        .join(CaseAccount, CaseAccount.account_id == Account.id)
        .where(
            CaseAccount.institution_id == institution_id,
            CaseAccount.case_id == case_id,
            CaseAccount.removed_at.is_(None),
        )
        .group_by(Account.currency)
        .order_by(Account.currency)
    ).all()
    return [(str(currency), int(total)) for currency, total in rows]


def pending_commitment(
    session: Session, *, institution_id: int, debtor_id: int, today: date
) -> tuple[int, str, date] | None:
    """Return the debtor's next promised amount (a pending promise, else a running plan's
    next instalment) as (amount, currency, due date), if any."""
    promise = session.execute(
        select(Promise.amount, Promise.currency, Promise.due_date)
        .where(
            Promise.institution_id == institution_id,
            Promise.debtor_id == debtor_id,
            Promise.status == PromiseStatus.pending,
        )
        .order_by(Promise.due_date)
        .limit(1)
    ).first()
    if promise is not None:
        return int(promise[0]), str(promise[1]), promise[2]
    instalment = session.execute(
        select(PlanInstalment.amount, PaymentPlan.currency, PlanInstalment.due_on)
        .join(PaymentPlan, PaymentPlan.id == PlanInstalment.plan_id)
        .where(
            PaymentPlan.institution_id == institution_id,
            PaymentPlan.debtor_id == debtor_id,
            PaymentPlan.status == "active",
            PlanInstalment.due_on >= today,
        )
        .order_by(PlanInstalment.due_on)
        .limit(1)
    ).first()
    if instalment is not None:
        return int(instalment[0]), str(instalment[1]), instalment[2]
    return None


def promise_broken_since(
    session: Session, *, institution_id: int, debtor_id: int, since: datetime
) -> bool:
    """Tell whether a promise of the debtor was found broken since a moment."""
    found = session.execute(
        select(Promise.id)
        .where(
            Promise.institution_id == institution_id,
            Promise.debtor_id == debtor_id,
            Promise.status == PromiseStatus.broken,
            Promise.resolved_at >= since,
        )
        .limit(1)
    ).first()
    return found is not None


def case_account_ids(session: Session, *, institution_id: int, case_id: int) -> list[int]:
    """Return the ids of a case's current accounts."""
    return [
        int(account_id)
        for account_id in session.execute(
            select(CaseAccount.account_id)
            .where(
                CaseAccount.institution_id == institution_id,
                CaseAccount.case_id == case_id,
                CaseAccount.removed_at.is_(None),
            )
            .order_by(CaseAccount.account_id)
        ).scalars()
    ]


@dataclass(frozen=True, slots=True)
class ScriptedAttempt:
    """One contact made with a script, as the comparison reads it."""

    script_id: int
    debtor_id: int
    started_at: datetime
    outcome: str | None
    right_party: bool


def scripted_attempts(
    session: Session,
    *,
    institution_id: int,
    since: datetime,
    until: datetime,
    right_party_codes: frozenset[str],
) -> list[ScriptedAttempt]:
    """Return the contacts made with a script in a period, oldest first."""
    rows = session.execute(
        select(
            ContactAttempt.script_id,
            ContactAttempt.debtor_id,
            ContactAttempt.started_at,
            ContactAttempt.outcome,
        )
        .where(
            ContactAttempt.institution_id == institution_id,
            ContactAttempt.script_id.is_not(None),
            ContactAttempt.status == AttemptStatus.MADE,
            ContactAttempt.started_at >= since,
            ContactAttempt.started_at < until,
        )
        .order_by(ContactAttempt.started_at, ContactAttempt.id)
    ).all()
    return [
        ScriptedAttempt(
            script_id=int(script_id),
            debtor_id=int(debtor_id),
            started_at=started_at,
            outcome=outcome,
            right_party=outcome in right_party_codes,
        )
        for script_id, debtor_id, started_at, outcome in rows
        if script_id is not None and started_at is not None
    ]


def _scripted_debtors(institution_id: int, since: datetime, until: datetime) -> Any:
    return select(ContactAttempt.debtor_id).where(
        ContactAttempt.institution_id == institution_id,
        ContactAttempt.script_id.is_not(None),
        ContactAttempt.status == AttemptStatus.MADE,
        ContactAttempt.started_at >= since,
        ContactAttempt.started_at < until,
    )


def promises_after_scripts(
    session: Session, *, institution_id: int, since: datetime, until: datetime
) -> list[tuple[int, datetime, str]]:
    """Return (debtor id, created at, status) of promises made from ``since`` on by debtors
    spoken to with a script in [since, until)."""
    rows = session.execute(
        select(Promise.debtor_id, Promise.created_at, Promise.status).where(
            Promise.institution_id == institution_id,
            Promise.debtor_id.in_(_scripted_debtors(institution_id, since, until)),
            Promise.created_at >= since,
        )
    ).all()
    return [(int(debtor_id), created_at, str(status)) for debtor_id, created_at, status in rows]


def complaints_after_scripts(
    session: Session, *, institution_id: int, since: datetime, until: datetime
) -> list[tuple[int, datetime]]:
    """Return (debtor id, when) of complaints recorded from ``since`` on the cases of debtors
    spoken to with a script in [since, until)."""
    rows = session.execute(
        select(Case.debtor_id, CaseEvent.at)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(
            CaseEvent.institution_id == institution_id,
            Case.debtor_id.in_(_scripted_debtors(institution_id, since, until)),
            CaseEvent.event == COMPLAINT_EVENT,
            CaseEvent.at >= since,
        )
    ).all()
    return [(int(debtor_id), at) for debtor_id, at in rows]


# The case event a complaint records (``cases.rules.CaseEvent.COMPLAINT``).
COMPLAINT_EVENT = "complaint"
