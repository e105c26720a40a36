"""The team lead's allocation page: agents' capacity and load, queues, propose and apply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.allocation import service
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.kit import clock
from recoup.kit.errors import NotFound
from recoup.models.institution import Institution
from recoup.web import labels
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

ManageQueues = Annotated[Viewer, viewer_with("queues:manage")]
CsrfChecked = Depends(csrf_protect)


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    institution_id = viewer.principal.institution_id
    institution = session.get(Institution, institution_id) if institution_id else None
    if institution is None:
        raise NotFound("allocation belongs to an institution; sign in as one of its users")
    return institution


@router.get("/allocation", response_class=HTMLResponse)
def allocation_page(
    viewer: ManageQueues,
    session: SessionDep,
    propose: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """Show agents and queues; with ``propose``, the allocation the solver would make today."""
    institution = _institution(session, viewer)
    today = clock.local_today(institution.timezone)
    proposal = None
    if propose:
        assert viewer.principal is not None
        proposal = service.allocate(
            session,
            institution=institution,
            as_of=today,
            actor=viewer.principal.actor,
            dry_run=True,
        )
    overview = service.overview(session, institution_id=institution.id, on=today)
    names = {agent.user_id: agent.display_name for agent in overview.agents}
    context: dict[str, Any] = {
        "today": today,
        "overview": overview,
        "proposal": proposal,
        "proposed_load": (
            sorted(
                (
                    (names.get(agent_id, str(agent_id)), load, proposal.capacity.get(agent_id, 0))
                    for agent_id, load in proposal.load.items()
                ),
                key=lambda row: (-row[1], row[0]),
            )
            if proposal
            else []
        ),
        "gain": (
            proposal.objective / proposal.greedy_objective
            if proposal and proposal.greedy_objective
            else None
        ),
        "currency": institution.currency,
        "skills": lambda codes: ", ".join(
            labels.coded(viewer.locale, "allocation.skill", code) for code in codes
        ),
    }
    return render(viewer, "allocation/index.html", context, active_nav="allocation")


@router.post("/allocation", response_class=HTMLResponse, dependencies=[CsrfChecked])
def apply_allocation(viewer: ManageQueues, session: SessionDep) -> Response:
    """Allocate today's work: owners and worklists change, each change kept in the history."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    report = service.allocate(
        session,
        institution=institution,
        as_of=clock.local_today(institution.timezone),
        actor=viewer.principal.actor,
    )
    return redirect(
        "/allocation",
        request=viewer.request,
        message=Flash(
            key="allocation.applied",
            params={"assigned": str(report.assigned), "changed": str(report.changed)},
        ),
    )
