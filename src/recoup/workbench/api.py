"""The promise-to-pay API: record, list, cancel and reconcile; tenant- and case-scoped."""

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
from recoup.models.workbench import Promise
from recoup.workbench import rules, service
from recoup.workbench.schemas import PromiseCreate, PromiseRead, ReconcileRead, ReconcileRequest

router = APIRouter(prefix="/api/v1", tags=["promises"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
# Recording and cancelling promises is case work; reconciling is a step of the daily cycle.
WRITE = "cases:work"
RECONCILE = "strategy:manage"


def promise_read(promise: Promise) -> PromiseRead:
    """Return the API shape of a promise."""
    return PromiseRead(
        id=promise.id,
        account_id=promise.account_id,
        debtor_id=promise.debtor_id,
        amount=str(to_decimal(promise.amount, promise.currency)),
        amount_minor=promise.amount,
        currency=promise.currency,
        paid_amount=str(to_decimal(promise.paid_amount, promise.currency)),
        paid_amount_minor=promise.paid_amount,
        promised_on=promise.promised_on,
        due_date=promise.due_date,
        channel=promise.channel,
        status=promise.status,
        resolved_at=promise.resolved_at,
        created_by=promise.created_by,
        note=promise.note,
    )


def institution_of(session: SessionDep, principal: Principal) -> Institution:
    """Return the caller's institution (platform admins have none: nothing to find)."""
    return institutions.require_callers(session, principal.institution_id, what="promises")


def terms_from(body: PromiseCreate, account: Account) -> rules.PromiseTerms:
    """Turn a request into promise terms, parsing the amount in the promise's currency."""
    currency = (body.currency or account.currency).upper()
    try:
        amount = parse_payable_amount(body.amount, currency)
    except AmountRefused as refused:
        raise ValidationFailed(
            f"amount: {refused}",
            errors=[{"field": "amount", "code": "amount_invalid", "message": str(refused)}],
        ) from None
    return rules.PromiseTerms(
        amount=amount, currency=currency, due_date=body.due_date, channel=body.channel
    )


@router.post(
    "/accounts/{account_id}/promises",
    response_model=PromiseRead,
    status_code=201,
    dependencies=[Depends(authorize(WRITE))],
)
def record_promise(
    account_id: RowId, body: PromiseCreate, principal: CurrentPrincipal, session: SessionDep
) -> PromiseRead:
    """Record a promise to pay on an account the caller may work."""
    account = get_scoped(session, Account, account_id, principal)
    institution = institution_of(session, principal)
    promise = service.record_promise(
        session,
        institution=institution,
        account=account,
        terms=terms_from(body, account),
        actor=principal.actor,
        user_id=principal.user_id,
        note=body.note,
    )
    return promise_read(promise)


@router.get(
    "/accounts/{account_id}/promises",
    response_model=Paginated[PromiseRead],
    dependencies=[Depends(authorize("accounts:read"))],
)
def list_promises(
    account_id: RowId,
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[PromiseRead]:
    """List an account's promises, the latest due first."""
    account = get_scoped(session, Account, account_id, principal)
    result = service.account_promises(
        session,
        institution_id=account.institution_id,
        account_id=account.id,
        page=PageRequest(page, size),
    )
    return Paginated[PromiseRead].of(result, promise_read)


@router.post(
    "/promises/{promise_id}/cancel",
    response_model=PromiseRead,
    dependencies=[Depends(authorize(WRITE))],
)
def cancel_promise(
    promise_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> PromiseRead:
    """Cancel a pending promise."""
    promise = get_scoped(session, Promise, promise_id, principal)
    institution = institution_of(session, principal)
    service.cancel_promise(session, institution=institution, promise=promise, actor=principal.actor)
    return promise_read(promise)


@router.post(
    "/promises/reconcile",
    response_model=ReconcileRead,
    dependencies=[Depends(authorize(RECONCILE))],
)
def reconcile(
    body: ReconcileRequest, principal: CurrentPrincipal, session: SessionDep
) -> ReconcileRead:
    """Match payments to the institution's pending promises as of a date."""
    institution = institution_of(session, principal)
    result = service.reconcile_promises(
        session,
        institution=institution,
        as_of=body.as_of or service.local_today(institution),
        actor=principal.actor,
    )
    return ReconcileRead(
        as_of=result.as_of,
        **result.counts(),
        escalated_account_ids=list(result.escalated_account_ids),
    )
