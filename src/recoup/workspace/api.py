"""The workspace API: the caller's next case, as a dialer or a desk application asks for it."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Query

from recoup.cases.api import case_read
from recoup.cases.schemas import CaseRead
from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.kit.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageRequest
from recoup.kit.schemas import Paginated
from recoup.portfolio.rules import BUCKETS
from recoup.workspace import service
from recoup.workspace.repository import CaseFilters
from recoup.workspace.schemas import NextCaseRead, SkippedCase

router = APIRouter(prefix="/api/v1", tags=["workspace"])

WORK = "cases:work"
Bucket = Literal["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+"]
assert set(BUCKETS) == set(get_args(Bucket)), "the bucket choices follow portfolio.rules"


@router.get("/work/next", response_model=NextCaseRead, dependencies=[Depends(authorize(WORK))])
def next_case(
    principal: CurrentPrincipal,
    session: SessionDep,
    language: Annotated[Literal["zh", "en"], Query(description="language of the reasons")] = "zh",
) -> NextCaseRead:
    """The caller's highest-priority case the gate allows calling now (due call-backs first).

    Read-only: the gate is asked through its preview, so asking stores no decision and uses
    up none of a debtor's contacts. Cases passed over come with the gate's reason.
    """
    institution = service.institution_of(session, principal)
    found = service.next_case(session, principal=principal, institution=institution)
    return NextCaseRead(
        case=case_read(found.case, None, institution.currency) if found.case else None,
        callback_due=found.callback_due,
        skipped=[
            SkippedCase(
                case_id=item.case.id,
                code=item.code,
                next_allowed_at=item.badge.next_allowed_at if item.badge else None,
                reasons=list(
                    (item.badge.reasons_zh if language == "zh" else item.badge.reasons_en)
                    if item.badge
                    else ()
                ),
            )
            for item in found.skipped
        ],
    )


@router.get(
    "/work/cases", response_model=Paginated[CaseRead], dependencies=[Depends(authorize(WORK))]
)
def my_cases(
    principal: CurrentPrincipal,
    session: SessionDep,
    state: Annotated[
        Literal["open", "promised", "on_plan", "disputed", "paused", "escalated", "closed"] | None,
        Query(),
    ] = None,
    bucket: Annotated[Bucket | None, Query()] = None,
    queue: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    callback_due: bool = False,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 25,
) -> Paginated[CaseRead]:
    """The caller's own cases (live ones unless a state is given), due call-backs first."""
    institution = service.institution_of(session, principal)
    result = service.my_cases(
        session,
        principal=principal,
        filters=CaseFilters(
            state=state,
            bucket=bucket,
            queue=queue.upper() if queue else None,
            callback_due=callback_due,
        ),
        page=PageRequest(page, size),
    )
    return Paginated[CaseRead].of(
        result, lambda row: case_read(row[0], row[1], institution.currency)
    )
