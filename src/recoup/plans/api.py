"""The payment plan API: propose, list, approve or reject (four eyes), cancel, reconcile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.institutions import repository as institutions
from recoup.kit.errors import ValidationFailed
from recoup.kit.money import AmountRefused, parse_payable_amount, to_decimal
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.models.account import Account
from recoup.models.institution import Institution
from recoup.models.plans import PaymentPlan
from recoup.plans import service
from recoup.plans.rules import Frequency
from recoup.plans.schemas import (
    InstalmentRead,
    PlanCreate,
    PlanRead,
    PlanReconcileRead,
    PlanReconcileRequest,
)

router = APIRouter(prefix="/api/v1", tags=["payment plans"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
WRITE = "cases:work"
APPROVE = "plans:approve"
RECONCILE = "strategy:manage"


def _money(minor: int, currency: str) -> str:
    return str(to_decimal(minor, currency))


def plan_read(view: service.PlanView) -> PlanRead:
    """Return the API shape of a plan and its instalments."""
    plan = view.plan
    return PlanRead(
        id=plan.id,
        account_id=plan.account_id,
        debtor_id=plan.debtor_id,
        currency=plan.currency,
        balance=_money(plan.balance, plan.currency),
        discount=_money(plan.discount, plan.currency),
        total=_money(plan.total, plan.currency),
        total_minor=plan.total,
        down_payment=_money(plan.down_payment, plan.currency),
        frequency=Frequency(plan.frequency),
        start_on=plan.start_on,
        status=plan.status,
        standing=plan.standing,
        paid_amount=_money(plan.paid_amount, plan.currency),
        overdue_amount=_money(plan.overdue_amount, plan.currency),
        needs_approval=plan.needs_approval,
        decided_by=plan.decided_by,
        decided_at=plan.decided_at,
        created_by=plan.created_by,
        note=plan.note,
        instalments=[
            InstalmentRead(
                number=item.number,
                due_on=item.due_on,
                amount=_money(item.amount, plan.currency),
                amount_minor=item.amount,
            )
            for item in view.instalments
        ],
    )


def _institution(session: SessionDep, principal: Principal) -> Institution:
    """Return the caller's institution (platform admins have none: nothing to find)."""
    return institutions.require_callers(session, principal.institution_id, what="payment plans")


def _amount(field: str, text: str, currency: str) -> int:
    try:
        return parse_payable_amount(text, currency)
    except AmountRefused as refused:
        raise ValidationFailed(
            f"{field}: {refused}",
            errors=[{"field": field, "code": refused.code, "message": str(refused)}],
        ) from None


def _view(session: SessionDep, plan: PaymentPlan) -> service.PlanView:
    return service.plan_view(session, plan)


@router.post(
    "/accounts/{account_id}/plans",
    response_model=PlanRead,
    status_code=201,
    dependencies=[Depends(authorize(WRITE))],
)
def propose_plan(
    account_id: RowId, body: PlanCreate, principal: CurrentPrincipal, session: SessionDep
) -> PlanRead:
    """Propose a payment plan on an account the caller may work.

    Within the institution's discount threshold it runs at once; above it, it waits for a
    manager other than the proposer (four eyes).
    """
    account = get_scoped(session, Account, account_id, principal)
    institution = _institution(session, principal)
    plan = service.propose_plan(
        session,
        institution=institution,
        account=account,
        instalments=body.instalments,
        start_on=body.start_on,
        frequency=body.frequency,
        discount=_amount("discount", body.discount, account.currency),
        down_payment=_amount("down_payment", body.down_payment, account.currency),
        actor=principal.actor,
        user_id=principal.user_id,
        note=body.note,
    )
    return plan_read(_view(session, plan))


@router.get(
    "/accounts/{account_id}/plans",
    response_model=Paginated[PlanRead],
    dependencies=[Depends(authorize("accounts:read"))],
)
def list_plans(
    account_id: RowId,
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[PlanRead]:
    """List an account's payment plans, newest first, with their instalments."""
    account = get_scoped(session, Account, account_id, principal)
    result = service.account_plans(
        session,
        institution_id=account.institution_id,
        account_id=account.id,
        page=PageRequest(page, size),
    )
    return Paginated[PlanRead].of(result, plan_read)


def _decide(plan_id: int, approve: bool, principal: Principal, session: SessionDep) -> PlanRead:
    plan = get_scoped(session, PaymentPlan, plan_id, principal)
    service.decide_plan(
        session,
        institution=_institution(session, principal),
        plan=plan,
        approve=approve,
        actor=principal.actor,
        user_id=principal.user_id,
    )
    return plan_read(_view(session, plan))


@router.post(
    "/plans/{plan_id}/approve",
    response_model=PlanRead,
    dependencies=[Depends(authorize(APPROVE))],
)
def approve_plan(plan_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> PlanRead:
    """Approve a plan waiting for a manager; its proposer cannot."""
    return _decide(plan_id, True, principal, session)


@router.post(
    "/plans/{plan_id}/reject",
    response_model=PlanRead,
    dependencies=[Depends(authorize(APPROVE))],
)
def reject_plan(plan_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> PlanRead:
    """Reject a plan waiting for a manager."""
    return _decide(plan_id, False, principal, session)


@router.post(
    "/plans/{plan_id}/cancel",
    response_model=PlanRead,
    dependencies=[Depends(authorize(WRITE))],
)
def cancel_plan(plan_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> PlanRead:
    """Cancel a plan that is running or waiting for approval."""
    plan = get_scoped(session, PaymentPlan, plan_id, principal)
    service.cancel_plan(
        session, institution=_institution(session, principal), plan=plan, actor=principal.actor
    )
    return plan_read(_view(session, plan))


@router.post(
    "/plans/reconcile",
    response_model=PlanReconcileRead,
    dependencies=[Depends(authorize(RECONCILE))],
)
def reconcile(
    body: PlanReconcileRequest, principal: CurrentPrincipal, session: SessionDep
) -> PlanReconcileRead:
    """Follow the institution's running plans against payments as of a date."""
    institution = _institution(session, principal)
    result = service.reconcile_plans(
        session, institution=institution, as_of=body.as_of, actor=principal.actor
    )
    return PlanReconcileRead(as_of=result.as_of, **result.counts())
