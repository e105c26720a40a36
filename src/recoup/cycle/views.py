"""The daily cycle's pages: the runs, and one run's report (stages, blocks, each case)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from recoup.cycle import service
from recoup.cycle.rules import STAGES, ActionStatus
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.institutions import repository as institutions
from recoup.kit import clock, jobs
from recoup.kit.pagination import PageRequest
from recoup.models.institution import Institution
from recoup.web.templating import Flash, Viewer, page_url_for, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

ReadCycle = Annotated[Viewer, viewer_with("strategy:read")]
RunCycle = Annotated[Viewer, viewer_with("strategy:manage")]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 50
RUN_COMMAND = "recoup cycle run --as-of YYYY-MM-DD --institution CODE"
STATUS_BADGES = {"completed": "badge-success", "running": "badge-warning", "failed": "badge-danger"}


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(
        session, viewer.principal.institution_id, what="the daily cycle"
    )


@router.get("/cycle", response_class=HTMLResponse)
def cycle_runs(
    viewer: ReadCycle,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """List the institution's daily cycle runs, the latest day first."""
    institution = _institution(session, viewer)
    runs = service.runs(session, institution_id=institution.id, page=PageRequest(page, PAGE_SIZE))
    context: dict[str, Any] = {
        "page": runs,
        "page_url": page_url_for(viewer.request),
        "badges": STATUS_BADGES,
        "run_command": RUN_COMMAND,
        "can_run": viewer.allows("strategy:manage"),
        "today": clock.local_today(institution.timezone),
    }
    return render(viewer, "cycle/runs.html", context, active_nav="cycle")


@router.get("/cycle/runs/{cycle_run_id}", response_class=HTMLResponse)
def cycle_run(
    viewer: ReadCycle,
    session: SessionDep,
    cycle_run_id: RunId,
    status: Annotated[str, Query(max_length=16)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """Show one run: each stage's counts and seconds, what the gate blocked, every case's action."""
    institution = _institution(session, viewer)
    run = service.require_run(session, institution_id=institution.id, run_id=cycle_run_id)
    report = service.report_of(session, institution=institution, run=run)
    wanted = status if status in {each.value for each in ActionStatus} else ""
    actions = service.run_actions(
        session, run=run, page=PageRequest(page, PAGE_SIZE), status=wanted or None
    )
    stages = [
        {
            "name": stage.value,
            "seconds": report.stages[stage.value].seconds if stage.value in report.stages else None,
            "counts": {
                key: value
                for key, value in (
                    report.stages[stage.value].counts if stage.value in report.stages else {}
                ).items()
                if isinstance(value, int | float | str) and not isinstance(value, bool)
            },
        }
        for stage in STAGES
    ]
    context: dict[str, Any] = {
        "run": run,
        "report": report,
        "stages": stages,
        "badges": STATUS_BADGES,
        "actions": actions,
        "reasons": service.action_reasons(session, run=run, actions=actions.items),
        "page_url": page_url_for(viewer.request),
        "statuses": [each.value for each in ActionStatus],
        "status": wanted,
    }
    return render(viewer, "cycle/run.html", context, active_nav="cycle")


@router.post("/cycle/run", response_class=HTMLResponse, dependencies=[Depends(csrf_protect)])
def ask_for_run(viewer: RunCycle, session: SessionDep) -> RedirectResponse:
    """Ask for today's cycle as a background job (once a day; a finished day is not redone)."""
    institution = _institution(session, viewer)
    today = clock.local_today(institution.timezone)
    jobs.enqueue(
        session,
        "cycle.run",
        {"institution": institution.code, "as_of": today.isoformat()},
        idempotency_key=f"cycle.run@{institution.id}@{today.isoformat()}",
        institution_id=institution.id,
    )
    return redirect(
        "/cycle",
        request=viewer.request,
        message=Flash(key="flash.cycle_queued", params={"day": today.isoformat()}),
    )
