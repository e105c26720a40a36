"""The dialer API: build and read call lists, export them as CSV, and the call-result webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.responses import PlainTextResponse

from recoup.deps import SessionDep
from recoup.identity.dependencies import CurrentPrincipal, authorize
from recoup.identity.pii import NO_STORE_HEADERS
from recoup.identity.principal import Principal
from recoup.institutions import repository as institutions
from recoup.models.institution import Institution
from recoup.outreach.api import report_read, work_list_read
from recoup.outreach.dialer import service
from recoup.outreach.dialer.schemas import CallListExport, CallResultCreate
from recoup.outreach.schemas import ContactReportRead, WorkListCreate, WorkListRead
from recoup.outreach.service import ReportInput

router = APIRouter(prefix="/api/v1/dialer", tags=["dialer"])

RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
WORK = "cases:work"
REPORT = "calls:report"


def _institution(session: SessionDep, principal: Principal) -> Institution:
    return institutions.require_callers(session, principal.institution_id, what="call lists")


@router.post(
    "/lists",
    response_model=WorkListRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(authorize(WORK))],
)
def build_call_list(
    body: WorkListCreate, principal: CurrentPrincipal, session: SessionDep
) -> WorkListRead:
    """Build a call list for an agent or a queue; every number is put to the gate (dry run).

    Blocked entries stay on the list with the gate's reasons and are never exported.
    """
    institution = _institution(session, principal)
    work_list, views = service.build_call_list(
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
def read_call_list(
    list_id: RowId, principal: CurrentPrincipal, session: SessionDep
) -> WorkListRead:
    """Read a call list (an agent reads their own), numbers masked."""
    institution = _institution(session, principal)
    work_list, views = service.call_list(
        session, principal=principal, institution=institution, list_id=list_id
    )
    assert work_list is not None
    return work_list_read(work_list, views)


@router.post(
    "/lists/{list_id}/export",
    response_class=PlainTextResponse,
    dependencies=[Depends(authorize(WORK))],
    responses={200: {"content": {"text/csv": {}}, "description": "The dialer CSV"}},
)
def export_call_list(
    list_id: RowId, body: CallListExport, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Export a call list's allowed entries as dialer CSV (audited; with a reason, unmasked)."""
    institution = _institution(session, principal)
    export = service.export_call_list(
        session,
        principal=principal,
        institution=institution,
        list_id=list_id,
        reveal_reason=body.reason,
    )
    headers = {"Content-Disposition": f'attachment; filename="{export.filename}"'}
    if export.revealed:
        headers.update(NO_STORE_HEADERS)
    return Response(export.text, media_type="text/csv; charset=utf-8", headers=headers)


@router.post(
    "/results",
    response_model=ContactReportRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(authorize(REPORT))],
    responses={200: {"model": ContactReportRead, "description": "The call id was reported before"}},
)
def report_call_result(
    body: CallResultCreate, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> ContactReportRead:
    """Record a dialer's call result in the contact log (idempotent by ``call_id``).

    The call is put to the gate at ``started_at``: one the gate would have refused is logged
    all the same and flagged as a violation (``violation: true``, with the rules).
    """
    institution = _institution(session, principal)
    report, created = service.report_call(
        session,
        principal=principal,
        institution=institution,
        given=ReportInput(
            external_id=body.call_id,
            entry_id=body.entry_id,
            happened_at=body.started_at,
            outcome=str(body.outcome),
            ended_at=body.ended_at,
            duration_seconds=body.duration_seconds,
        ),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return report_read(report, replayed=not created)
