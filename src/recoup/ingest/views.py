"""Pages for imports and data quality: the report, recent runs and each run's rejects."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from recoup.audit import service as audit
from recoup.db import writes_on_get
from recoup.deps import SessionDep
from recoup.enums import ImportStatus
from recoup.identity.scoping import get_scoped
from recoup.ingest import repository, service
from recoup.ingest.rules import import_run_status, neutralise_formula
from recoup.ingest.runner import REPORT_COLUMNS
from recoup.kit.clock import utcnow
from recoup.kit.pagination import Page, PageRequest
from recoup.models.ingest import ImportReject, ImportRun
from recoup.models.institution import Institution
from recoup.web.templating import PAGE_SECURITY_HEADERS, Viewer, page_url_for, render, viewer_with

router = APIRouter(include_in_schema=False)

RUNS_PAGE_SIZE = 20
REJECTS_PAGE_SIZE = 50
# At or above this share of debtors with a valid own contact the portfolio counts as reachable.
GOOD_CONTACT_SHARE = 0.8
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
ReadQuality = Annotated[Viewer, viewer_with("dq:read")]


def _status_of_runs() -> Callable[[ImportRun], ImportStatus]:
    """Return how pages tell run statuses: a running run whose process is silent is interrupted."""
    now = utcnow()
    return lambda run: import_run_status(run.status, last_heartbeat=run.updated_at, now=now)


def _institution(viewer: Viewer, session: SessionDep) -> Institution | None:
    assert viewer.principal is not None
    if viewer.principal.institution_id is None:
        return None
    return session.get(Institution, viewer.principal.institution_id)


@router.get("/imports", response_class=HTMLResponse)
def data_quality(viewer: ReadQuality, session: SessionDep, page: PageNumber = 1) -> HTMLResponse:
    """Show the institution's data-quality report and its import runs, newest first."""
    institution = _institution(viewer, session)
    context: dict[str, Any] = {
        "institution": institution,
        "report": None,
        "runs": None,
        "run_status": _status_of_runs(),
    }
    if institution is not None:
        request = PageRequest(page, RUNS_PAGE_SIZE)
        runs, total = repository.recent_runs(
            session, institution_id=institution.id, offset=request.offset, limit=request.size
        )
        report = service.data_quality_report(session, institution=institution)
        context.update(
            report=report,
            runs=Page(runs, total, request.page, request.size),
            page_url=page_url_for(viewer.request),
            contact_share_good=report.valid_self_contact_share >= GOOD_CONTACT_SHARE,
            nothing_imported=total == 0 and report.debtors == 0,
        )
    return render(viewer, "imports/report.html", context, active_nav="imports")


@router.get("/imports/{run_id}", response_class=HTMLResponse)
def import_run(
    viewer: ReadQuality, session: SessionDep, run_id: RowId, page: PageNumber = 1
) -> HTMLResponse:
    """Show one import run's counts and its rejected fields (values masked), in file order."""
    assert viewer.principal is not None
    run = get_scoped(session, ImportRun, run_id, viewer.principal)
    request = PageRequest(page, REJECTS_PAGE_SIZE)
    rejects, total = repository.run_rejects(
        session,
        institution_id=run.institution_id,
        run_id=run.id,
        offset=request.offset,
        limit=request.size,
    )
    context = {
        "run": run,
        "rejects": Page(rejects, total, request.page, request.size),
        "page_url": page_url_for(viewer.request),
        "reject_counts": sorted(run.reject_counts.items(), key=lambda item: (-item[1], item[0])),
        "run_status": _status_of_runs(),
    }
    return render(viewer, "imports/run.html", context, active_nav="imports")


@router.get("/imports/{run_id}/rejects.csv")
@writes_on_get
def reject_report(viewer: ReadQuality, session: SessionDep, run_id: RowId) -> Response:
    """Download one run's rejects as the CLI's reject report (masked values only; audited)."""
    assert viewer.principal is not None
    run = get_scoped(session, ImportRun, run_id, viewer.principal)
    rejects, total = repository.run_rejects(
        session, institution_id=run.institution_id, run_id=run.id
    )
    audit.record(
        session,
        actor=viewer.principal.actor,
        action="export.rejects",
        object_type="import_run",
        object_id=run.id,
        institution_id=run.institution_id,
        details={"rows": total, "kind": str(run.kind)},
    )
    headers = {
        **PAGE_SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="import-{run.id}-rejects.csv"',
    }
    return Response(_reject_csv(rejects), media_type="text/csv; charset=utf-8", headers=headers)


def _reject_csv(rejects: list[ImportReject]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(
        [
            reject.row_number,
            neutralise_formula(reject.field),
            neutralise_formula(reject.value),
            neutralise_formula(reject.reason),
            reject.code,
        ]
        for reject in rejects
    )
    # UTF-8 with BOM, so Excel opens the Chinese reasons correctly (as the CLI's report does).
    return buffer.getvalue().encode("utf-8-sig")
