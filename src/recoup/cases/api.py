"""The case API: list and open cases, change a case's state, give it to an agent."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from recoup.cases import service
from recoup.cases.rules import TRANSITIONS, CaseState
from recoup.cases.schemas import (
    CaseAccountRead,
    CaseDetail,
    CaseEventCreate,
    CaseEventRead,
    CaseOwnerUpdate,
    CaseRead,
)
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.identity.scoping import get_scoped
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.errors import PermissionDenied
from recoup.kit.money import to_decimal
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.models.cases import Case
from recoup.models.institution import Institution

router = APIRouter(prefix="/api/v1", tags=["cases"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
READ = "cases:read"
WORK = "cases:work"
MANAGE = "queues:manage"


def _institution(session: SessionDep, principal: Principal) -> Institution:
    """Return the caller's institution (platform admins have none: nothing to find)."""
    return institutions.require_callers(session, principal.institution_id, what="cases")


def case_read(case: Case, queue: str | None, currency: str) -> CaseRead:
    return CaseRead(
        id=case.id,
        debtor_id=case.debtor_id,
        state=case.state,
        reason=case.reason,
        owner_id=case.owner_id,
        queue=queue,
        expected_recovery=str(to_decimal(case.expected_recovery, currency)),
        expected_recovery_minor=case.expected_recovery,
        priority=case.priority,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
        allocated_on=case.allocated_on,
    )


def _detail(session: SessionDep, principal: Principal, case_id: int) -> CaseDetail:
    detail = service.case_detail(session, principal=principal, case_id=case_id)
    currency = _institution(session, principal).currency
    return CaseDetail(
        **case_read(detail.case, detail.queue, currency).model_dump(),
        accounts=[
            CaseAccountRead(
                id=account.id,
                external_id=account.external_id,
                bucket=account.bucket,
                status=str(account.status),
                days_past_due=account.days_past_due,
                balance=str(to_decimal(account.balance, account.currency)),
                balance_minor=account.balance,
                currency=account.currency,
            )
            for account in detail.accounts
        ],
        history=[
            CaseEventRead(
                event=row.event,
                from_state=row.from_state,
                to_state=row.to_state,
                reason=row.reason,
                from_owner_id=row.from_owner_id,
                to_owner_id=row.to_owner_id,
                note=row.note,
                actor=row.actor,
                at=row.at,
            )
            for row in detail.history
        ],
    )


@router.get("/cases", response_model=Paginated[CaseRead], dependencies=[Depends(authorize(READ))])
def list_cases(
    principal: CurrentPrincipal,
    session: SessionDep,
    state: CaseState | None = None,
    queue: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    owner: Annotated[
        Literal["me", "none"] | None,
        Query(description="me: the caller's cases; none: cases without an agent"),
    ] = None,
    page: PageNumber = 1,
    size: PageSize = 50,
) -> Paginated[CaseRead]:
    """List the cases the caller may see (an agent: their own), highest priority first."""
    currency = _institution(session, principal).currency
    result = service.list_cases(
        session,
        principal=principal,
        page=PageRequest(page, size),
        state=str(state) if state else None,
        queue=queue,
        owner_id=principal.user_id if owner == "me" else None,
        unowned=owner == "none",
    )
    return Paginated[CaseRead].of(result, lambda row: case_read(row[0], row[1], currency))


@router.get("/cases/{case_id}", response_model=CaseDetail, dependencies=[Depends(authorize(READ))])
def get_case(case_id: RowId, principal: CurrentPrincipal, session: SessionDep) -> CaseDetail:
    """One case with its accounts and its history of states and agents."""
    return _detail(session, principal, case_id)


@router.post(
    "/cases/{case_id}/events", response_model=CaseDetail, dependencies=[Depends(authorize(WORK))]
)
def record_event(
    case_id: RowId, body: CaseEventCreate, principal: CurrentPrincipal, session: SessionDep
) -> CaseDetail:
    """Change a case's state with a note: hardship, complaint, a dispute raised, a request to
    stop contact (case work); resuming, escalating, recalling, resolving a dispute, writing
    off or closing for a death (decisions for a team lead or manager, ``queues:manage``)."""
    case = get_scoped(session, Case, case_id, principal)
    if TRANSITIONS[body.event].manual and not principal.can(MANAGE):
        raise PermissionDenied(f"'{body.event}' is a decision for a team lead or manager")
    service.change_state(
        session,
        institution_id=case.institution_id,
        case_id=case.id,
        event=body.event,
        actor=principal.actor,
        note=body.note,
    )
    return _detail(session, principal, case_id)


@router.put(
    "/cases/{case_id}/owner", response_model=CaseDetail, dependencies=[Depends(authorize(MANAGE))]
)
def assign_owner(
    case_id: RowId, body: CaseOwnerUpdate, principal: CurrentPrincipal, session: SessionDep
) -> CaseDetail:
    """Give a case to an active, certified agent, or to nobody (``owner_id``: null)."""
    case = get_scoped(session, Case, case_id, principal)
    institution = _institution(session, principal)
    service.assign_owner(
        session,
        institution_id=institution.id,
        case_id=case.id,
        owner_id=body.owner_id,
        actor=principal.actor,
        note=body.note,
        on=clock.local_today(institution.timezone),
    )
    return _detail(session, principal, case_id)
