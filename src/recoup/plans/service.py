"""Payment plans: propose, approve (four eyes), cancel, and follow them against payments.

Never commits. A plan moves the account's case: agreeing one puts it *on plan*, a broken plan
re-opens it, a completed plan closes it as settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.cases import service as cases
from recoup.cases.rules import CaseEvent
from recoup.enums import FINISHED_STATUSES
from recoup.institutions.settings import settings_of
from recoup.kit import clock, events
from recoup.kit.clock import start_of_day, utcnow
from recoup.kit.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from recoup.kit.pagination import Page, PageRequest
from recoup.kit.text import require_text
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan, PlanInstalment
from recoup.plans import repository, rules

PENDING_APPROVAL = "pending_approval"
ACTIVE = "active"
COMPLETED = "completed"
BROKEN = "broken"
CANCELLED = "cancelled"
REJECTED = "rejected"


def limits_of(institution: Institution) -> rules.PlanLimits:
    """The institution's plan limits from its settings."""
    section = settings_of(institution).plans
    return rules.PlanLimits(
        max_instalments=section.max_instalments,
        max_discount_bp=section.max_discount_bp,
        approval_above_bp=section.approval_above_bp,
        grace_days=section.grace_days,
    )


def _refuse(refused: rules.PlanRefused) -> ValidationFailed:
    return ValidationFailed(
        f"{refused.field}: {refused}",
        message_key=f"plans.refused.{refused.field}",
        errors=[{"field": refused.field, "code": "plan_refused", "message": str(refused)}],
    )


def propose_plan(
    session: Session,
    *,
    institution: Institution,
    account: Account,
    instalments: int,
    start_on: date,
    frequency: rules.Frequency = rules.Frequency.MONTHLY,
    discount: int = 0,
    down_payment: int = 0,
    actor: str,
    user_id: int | None,
    note: str | None = None,
) -> PaymentPlan:
    """Agree a plan on an account: active at once, or waiting for a manager above the limit."""
    locked = repository.lock_account(session, institution_id=institution.id, account_id=account.id)
    if locked is None:
        raise NotFound(f"no account {account.id}")
    if locked.status in FINISHED_STATUSES:
        raise ValidationFailed(
            "account: this account is settled or closed; there is nothing to plan",
            errors=[{"field": "account", "code": "finished", "message": "account is finished"}],
        )
    if repository.live_plan_for_account(
        session, institution_id=institution.id, account_id=locked.id
    ):
        raise Conflict(
            "account: this account already has a plan running or waiting for approval; "
            "cancel it first",
            message_key="plans.refused.live",
        )
    today = clock.local_today(institution.timezone)
    if start_on < today:
        raise ValidationFailed(
            f"start_on: the first instalment cannot fall due before today ({today.isoformat()})",
            message_key="plans.error.start_on",
            errors=[{"field": "start_on", "code": "past", "message": "start date is past"}],
        )
    terms = rules.PlanTerms(
        balance=locked.balance,
        instalments=instalments,
        start=start_on,
        frequency=frequency,
        discount=discount,
        down_payment=down_payment,
    )
    try:
        schedule = rules.schedule(terms, limits_of(institution))
    except rules.PlanRefused as refused:
        raise _refuse(refused) from None
    plan = PaymentPlan(
        institution_id=institution.id,
        account_id=locked.id,
        debtor_id=locked.debtor_id,
        currency=locked.currency,
        balance=locked.balance,
        discount=schedule.discount,
        total=schedule.total,
        down_payment=down_payment,
        instalment_count=instalments,
        frequency=str(frequency),
        start_on=start_on,
        status=PENDING_APPROVAL if schedule.needs_approval else ACTIVE,
        standing=str(rules.PlanStatus.ON_TRACK),
        needs_approval=schedule.needs_approval,
        created_by=actor,
        created_by_id=user_id,
        note=require_text("note", note)[:500] if note else None,
    )
    session.add(plan)
    session.flush()
    session.add_all(
        PlanInstalment(
            institution_id=institution.id,
            plan_id=plan.id,
            number=item.number,
            due_on=item.due_on,
            amount=item.amount,
        )
        for item in schedule.instalments
    )
    if plan.status == ACTIVE:
        _move_case(
            session,
            institution=institution,
            account_id=locked.id,
            event=CaseEvent.PLAN_AGREED,
            actor=actor,
        )
    audit.record(
        session,
        actor=actor,
        action="plan.create",
        object_type="payment_plan",
        object_id=plan.id,
        institution_id=institution.id,
        details={
            "account_id": locked.id,
            "total": plan.total,
            "discount": plan.discount,
            "currency": plan.currency,
            "instalments": instalments,
            "status": plan.status,
        },
    )
    events.emit(
        session,
        institution_id=institution.id,
        type="plan.created",
        data={"plan_id": plan.id, "account_id": locked.id, "status": str(plan.status)},
    )
    return plan


def _move_case(
    session: Session, *, institution: Institution, account_id: int, event: CaseEvent, actor: str
) -> None:
    """Move the account's case (opening it if the account is delinquent and has none)."""
    account = session.get(Account, account_id)
    assert account is not None
    case = cases.case_for_account(
        session,
        institution_id=institution.id,
        account_id=account.id,
        debtor_id=account.debtor_id,
        status=str(account.status),
        days_past_due=account.days_past_due,
        actor=actor,
    )
    cases.apply_to_case(session, case, event, actor=actor)


def decide_plan(
    session: Session,
    *,
    institution: Institution,
    plan: PaymentPlan,
    approve: bool,
    actor: str,
    user_id: int | None,
) -> PaymentPlan:
    """Approve or reject a plan waiting for approval; its proposer cannot (four eyes)."""
    if plan.status != PENDING_APPROVAL:
        raise Conflict(f"plan {plan.id} is {plan.status}, not waiting for approval")
    if user_id is not None and plan.created_by_id == user_id:
        raise PermissionDenied(
            "four eyes: a plan is approved by someone other than its proposer",
            message_key="plans.refused.own",
        )
    plan.status = ACTIVE if approve else REJECTED
    plan.decided_by = actor
    plan.decided_at = utcnow()
    if approve:
        _move_case(
            session,
            institution=institution,
            account_id=plan.account_id,
            event=CaseEvent.PLAN_AGREED,
            actor=actor,
        )
    else:
        plan.resolved_at = plan.decided_at
    audit.record(
        session,
        actor=actor,
        action="plan.approve" if approve else "plan.reject",
        object_type="payment_plan",
        object_id=plan.id,
        institution_id=institution.id,
        details={"account_id": plan.account_id, "discount": plan.discount},
    )
    return plan


def cancel_plan(
    session: Session, *, institution: Institution, plan: PaymentPlan, actor: str
) -> PaymentPlan:
    """Cancel a running or waiting plan; a running plan's case goes back to open."""
    if plan.status not in repository.LIVE:
        raise Conflict(f"plan {plan.id} is {plan.status}; only a live plan can be cancelled")
    was_active = plan.status == ACTIVE
    plan.status = CANCELLED
    plan.resolved_at = utcnow()
    if was_active:
        _move_case(
            session,
            institution=institution,
            account_id=plan.account_id,
            event=CaseEvent.PLAN_CANCELLED,
            actor=actor,
        )
    audit.record(
        session,
        actor=actor,
        action="plan.cancel",
        object_type="payment_plan",
        object_id=plan.id,
        institution_id=institution.id,
        details={"account_id": plan.account_id},
    )
    return plan


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan with its instalments, for the API and the account page."""

    plan: PaymentPlan
    instalments: tuple[PlanInstalment, ...]


def account_plans(
    session: Session, *, institution_id: int, account_id: int, page: PageRequest
) -> Page[PlanView]:
    """An account's plans with their instalments, newest first."""
    found = repository.account_plans(
        session, institution_id=institution_id, account_id=account_id, page=page
    )
    by_plan = repository.instalments(session, plan_ids=[plan.id for plan in found.items])
    return Page(
        items=[PlanView(plan, tuple(by_plan[plan.id])) for plan in found.items],
        total=found.total,
        page=found.page,
        size=found.size,
    )


@dataclass(frozen=True, slots=True)
class PlanReconcileResult:
    """What one reconciliation of running plans found."""

    as_of: date
    examined: int = 0
    on_track: int = 0
    late: int = 0
    broken: int = 0
    completed: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "examined": self.examined,
            "on_track": self.on_track,
            "late": self.late,
            "broken": self.broken,
            "completed": self.completed,
        }


def reconcile_plans(
    session: Session, *, institution: Institution, as_of: date | None = None, actor: str
) -> PlanReconcileResult:
    """Follow every running plan against the payments made since it was agreed.

    Payments count from the start of the day the plan was made, in the institution's zone.
    A completed plan closes the case as settled; a broken one re-opens it.
    """
    as_of = as_of or clock.local_today(institution.timezone)
    grace = limits_of(institution).grace_days
    local = clock.zone(institution.timezone)
    plans = repository.active_plans(session, institution_id=institution.id)
    by_plan = repository.instalments(session, plan_ids=[plan.id for plan in plans])
    counts = dict.fromkeys(("on_track", "late", "broken", "completed"), 0)
    moves: list[tuple[int, CaseEvent]] = []
    # Payments count from the start of the local day each plan was agreed: one query for all.
    since = {
        plan.id: start_of_day(plan.created_at.astimezone(local).date(), institution.timezone)
        for plan in plans
    }
    paid_on_accounts = repository.payments_since(
        session,
        institution_id=institution.id,
        account_ids=sorted({plan.account_id for plan in plans}),
        since=min(since.values(), default=utcnow()),
    )
    for plan in plans:
        payments = [
            (paid_at, amount)
            for paid_at, amount in paid_on_accounts[plan.account_id]
            if paid_at >= since[plan.id]
        ]
        schedule = rules.Schedule(
            instalments=tuple(
                rules.Instalment(row.number, row.due_on, row.amount) for row in by_plan[plan.id]
            ),
            total=plan.total,
            discount=plan.discount,
            needs_approval=plan.needs_approval,
        )
        standing = rules.standing(
            schedule,
            [
                rules.PlanPayment(paid_at.astimezone(local).date(), amount)
                for paid_at, amount in payments
            ],
            today=as_of,
            grace_days=grace,
        )
        plan.standing = str(standing.status)
        plan.paid_amount = standing.paid
        plan.overdue_amount = standing.overdue
        counts[str(standing.status)] += 1
        event = {
            rules.PlanStatus.COMPLETED: CaseEvent.PLAN_COMPLETED,
            rules.PlanStatus.BROKEN: CaseEvent.PLAN_BROKEN,
        }.get(standing.status)
        if event is None:
            continue
        plan.status = COMPLETED if event is CaseEvent.PLAN_COMPLETED else BROKEN
        plan.resolved_at = utcnow()
        if plan.status == BROKEN:
            events.emit(
                session,
                institution_id=institution.id,
                type="plan.broken",
                data={"plan_id": plan.id, "account_id": plan.account_id},
            )
        moves.append((plan.account_id, event))
    session.flush()
    cases.apply_to_accounts(session, institution_id=institution.id, events=moves, actor=actor)
    result = PlanReconcileResult(as_of=as_of, examined=len(plans), **counts)
    if plans:
        audit.record(
            session,
            actor=actor,
            action="plan.reconcile",
            object_type="institution",
            object_id=institution.id,
            institution_id=institution.id,
            details={"as_of": as_of.isoformat(), **result.counts()},
        )
    return result


def reopen_plans_completed_by(
    session: Session, *, institution: Institution, account_id: int, paid_at: datetime
) -> int:
    """Run again the account's plans a reversed payment had completed; return how many.

    A plan completed with the payment among those counted (made on or after the day it was
    agreed) is active again; the next reconciliation follows it on the payments that stand.
    """
    local = clock.zone(institution.timezone)
    reopened = 0
    for plan in repository.plans_of_account(
        session, institution_id=institution.id, account_id=account_id, statuses=(COMPLETED,)
    ):
        agreed = start_of_day(plan.created_at.astimezone(local).date(), institution.timezone)
        if paid_at >= agreed:
            plan.status = ACTIVE
            plan.standing = str(rules.PlanStatus.ON_TRACK)
            plan.resolved_at = None
            reopened += 1
    return reopened


def plan_view(session: Session, plan: PaymentPlan) -> PlanView:
    """One plan with its instalments."""
    return PlanView(plan, tuple(repository.instalments(session, plan_ids=[plan.id])[plan.id]))
