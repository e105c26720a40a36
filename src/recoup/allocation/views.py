"""The team lead's allocation page: agents' capacity and load, queues, propose and apply."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.allocation import service
from recoup.cases import repository as cases_repository
from recoup.cases import service as cases
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.errors import NotFound, RecoupError, ValidationFailed
from recoup.models.institution import Institution
from recoup.portfolio.rules import BUCKETS
from recoup.web import labels
from recoup.web.templating import Flash, PostedForm, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

ManageQueues = Annotated[Viewer, viewer_with("queues:manage")]
CsrfChecked = Depends(csrf_protect)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(
        session, viewer.principal.institution_id, what="work allocations"
    )


@router.get("/allocation", response_class=HTMLResponse)
def allocation_page(
    viewer: ManageQueues,
    session: SessionDep,
    propose: Annotated[bool, Query()] = False,
    queue: Annotated[str | None, Query(max_length=32)] = None,
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
    editing = (
        cases_repository.queue_by_code(session, institution_id=institution.id, code=queue)
        if queue
        else None
    )
    members = cases_repository.queue_members(session, institution_id=institution.id)
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
        "buckets": BUCKETS,
        "editing": editing,
        "editing_members": {
            user_id for user_id, queue_ids in members.items() if editing and editing.id in queue_ids
        },
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


def _words(values: str) -> list[str]:
    return [part for part in values.replace("，", ",").replace(" ", ",").split(",") if part]


def _refused(viewer: Viewer, error: RecoupError) -> Response:
    return redirect(
        "/allocation",
        request=viewer.request,
        message=Flash(
            "allocation.refused",
            level="error",
            params={"message": labels.refusal(error, viewer.locale, lead=False)},
        ),
    )


@router.post(
    "/allocation/agents/{user_id}", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def save_agent(
    viewer: ManageQueues, session: SessionDep, user_id: RowId, form: PostedForm
) -> Response:
    """Set an agent's cases a day, skills and visit regions."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        capacity = str(form.get("daily_capacity", "")).strip()
        if not capacity.isdigit():
            raise ValidationFailed(viewer.text("allocation.error.capacity"))
        cases.set_agent_profile(
            session,
            institution_id=institution.id,
            user_id=user_id,
            daily_capacity=int(capacity),
            skills=_words(str(form.get("skills", ""))),
            regions=_words(str(form.get("regions", ""))),
            actor=viewer.principal.actor,
        )
    except NotFound:
        raise  # another institution's user or an unknown one: not a form mistake
    except RecoupError as error:
        return _refused(viewer, error)
    return redirect("/allocation", request=viewer.request, message=Flash("allocation.agent_saved"))


@router.post("/allocation/absences", response_class=HTMLResponse, dependencies=[CsrfChecked])
def add_absence(
    viewer: ManageQueues,
    session: SessionDep,
    user_id: Annotated[str, Form(max_length=20)] = "",
    starts_on: Annotated[str, Form(max_length=10)] = "",
    ends_on: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Record days an agent is away."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        if not user_id.isdigit():
            raise ValidationFailed(viewer.text("allocation.error.agent"))
        try:
            first, last = date.fromisoformat(starts_on), date.fromisoformat(ends_on)
        except ValueError:
            raise ValidationFailed(viewer.text("allocation.error.dates")) from None
        cases.add_absence(
            session,
            institution_id=institution.id,
            user_id=int(user_id),
            starts_on=first,
            ends_on=last,
            reason=reason.strip() or "leave",
            actor=viewer.principal.actor,
        )
    except NotFound:
        raise  # another institution's user or an unknown one: not a form mistake
    except RecoupError as error:
        return _refused(viewer, error)
    return redirect(
        "/allocation", request=viewer.request, message=Flash("allocation.absence_saved")
    )


@router.post("/allocation/queues", response_class=HTMLResponse, dependencies=[CsrfChecked])
def save_queue(
    viewer: ManageQueues,
    session: SessionDep,
    code: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=128)] = "",
    rank: Annotated[str, Form(max_length=6)] = "100",
    skills: Annotated[str, Form(max_length=200)] = "",
    buckets: Annotated[list[str] | None, Form(max_length=16)] = None,
    member_ids: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> Response:
    """Create or change a queue and who works it; cases are routed again at once."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        rank = rank.strip() or "100"
        if not rank.isdigit():
            raise ValidationFailed(viewer.text("allocation.error.rank"))
        cases.save_queue(
            session,
            institution_id=institution.id,
            code=code,
            name=name,
            rank=int(rank),
            buckets=list(buckets or []),
            skills=_words(skills),
            member_ids=[int(value) for value in member_ids or [] if value.isdigit()],
            actor=viewer.principal.actor,
        )
        cases.sync_cases(session, institution_id=institution.id, actor=viewer.principal.actor)
    except NotFound:
        raise  # another institution's user or an unknown one: not a form mistake
    except RecoupError as error:
        return _refused(viewer, error)
    return redirect("/allocation", request=viewer.request, message=Flash("allocation.queue_saved"))
