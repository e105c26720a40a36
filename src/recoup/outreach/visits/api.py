"""The field visit API: build and read visit lists, and record what came of each visit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.principal import Principal
from recoup.institutions import repository as institutions
from recoup.models.institution import Institution
from recoup.outreach.api import report_read, work_list_read
from recoup.outreach.schemas import ContactReportRead, WorkListCreate, WorkListRead
from recoup.outreach.service import ReportInput
from recoup.outreach.visits import service
from recoup.outreach.visits.schemas import VisitResultCreate

router = APIRouter(prefix="/api/v1/visits", tags=["visits"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
WORK = "cases:work"


def _institution(session: SessionDep, principal: Principal) -> Institution:
    return institutions.require_callers(session, principal.institution_id, what="visit lists")


@router.post(
    "/lists",
    response_model=WorkListRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(authorize(WORK))],
)
def build_visit_list(
    body: WorkListCreate, principal: CurrentPrincipal, session: SessionDep
) -> WorkListRead:
    """Build a field agent's visit list: every address put to the gate, allowed ones routed.

    Entries come in route order (by city, then district, each district once); blocked ones
    last with the gate's reasons. ``route_metres`` is the route's length between districts.
    """
    institution = _institution(session, principal)
    work_list, views = service.build_visit_list(
        session,
        principal=principal,
        institution=institution,
        agent_id=body.agent_id,
        queue_code=body.queue,
        day=body.day,
    )
    return work_list_read(work_list, views)


@router.get(
    "/lists/{list_id}", response_model=WorkListRead, dependencies=[Depends(authorize(WORK))]
)
def read_visit_list(
    list_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> WorkListRead:
    """Read a visit list in route order (an agent reads their own), addresses masked."""
    institution = _institution(session, principal)
    work_list, views = service.visit_list(
        session, principal=principal, institution=institution, list_id=list_id
    )
    assert work_list is not None
    return work_list_read(work_list, views)


@router.post(
    "/results",
    response_model=ContactReportRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(authorize(WORK))],
    responses={
        200: {"model": ContactReportRead, "description": "The visit id was reported before"}
    },
)
def report_visit_result(
    body: VisitResultCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ContactReportRead:
    """Record a visit's outcome, notes and recording reference in the contact log.

    Idempotent by ``visit_id``. Under CN-REC every visit made needs ``record_ref``. The visit
    is put to the gate at ``visited_at``; one it would have refused is flagged as a violation.
    """
    institution = _institution(session, principal)
    report, created = service.report_visit(
        session,
        principal=principal,
        institution=institution,
        given=ReportInput(
            external_id=body.visit_id,
            entry_id=body.entry_id,
            happened_at=body.visited_at,
            outcome=str(body.outcome),
            notes=body.notes,
            record_ref=body.record_ref,
        ),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return report_read(report, replayed=not created)
