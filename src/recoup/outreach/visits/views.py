"""The field visit page: today's route by city and district, a printable sheet, visit results."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.contact.channels import Medium
from recoup.contact.rules import OUTCOMES
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.identity.pii import MIN_REASON_LENGTH, NO_STORE_HEADERS
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.errors import NotFound, PermissionDenied, RecoupError, ValidationFailed
from recoup.kit.masking import mask_text
from recoup.kit.pagination import MAX_PAGE, Page
from recoup.models.institution import Institution
from recoup.outreach import repository
from recoup.outreach import service as outreach
from recoup.outreach.visits import service
from recoup.web import labels
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 60
WorkCases = Annotated[Viewer, viewer_with("cases:work")]
CsrfChecked = Depends(csrf_protect)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The outcomes a visit can have: those that describe a contact in person.
VISIT_OUTCOMES = [
    code.value for code, meaning in OUTCOMES.items() if Medium.IN_PERSON in meaning.media
]


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(
        session, viewer.principal.institution_id, what="visit lists"
    )


def _refused(viewer: Viewer, error: RecoupError) -> Flash:
    return Flash(
        "outreach.flash.refused",
        level="error",
        params={"message": labels.refusal(error, viewer.locale)},
    )


def _address(view: outreach.EntryView, *, revealed: bool) -> str:
    point = view.contact_point
    if point is None:
        return "—"
    return point.value if revealed else mask_text(point.value, point.kind)


def _context(
    viewer: Viewer,
    session: Session,
    institution: Institution,
    list_id: int | None,
    *,
    revealed: bool = False,
) -> dict[str, Any]:
    assert viewer.principal is not None
    work_list, views = service.visit_list(
        session, principal=viewer.principal, institution=institution, list_id=list_id
    )
    groups = (
        service.route_groups(
            institution, work_list, views, planned=service.planned_times(session, views)
        )
        if work_list
        else []
    )
    lead = not viewer.principal.is_agent
    return {
        "work_list": work_list,
        "groups": groups,
        "blocked": [view for view in views if not view.entry.allowed],
        "address": lambda view: _address(view, revealed=revealed),
        "revealed": revealed,
        "agents": repository.agents(session, institution_id=institution.id) if lead else [],
        "lead": lead,
        "today": clock.local_today(institution.timezone),
        "now_local": clock.utcnow()
        .astimezone(clock.zone(institution.timezone))
        .strftime("%Y-%m-%dT%H:%M"),
        "outcomes": VISIT_OUTCOMES,
        "record_needed": service_record_needed(institution),
        "can_reveal": viewer.allows("pii:reveal"),
        "token": lambda: secrets.token_hex(8),
    }


def service_record_needed(institution: Institution) -> bool:
    """Tell whether the institution's pack wants each visit's recording referenced (CN-REC)."""
    return outreach.visits_need_record(institution) is not None


@router.get("/visits", response_class=HTMLResponse)
def visits_page(
    viewer: WorkCases,
    session: SessionDep,
    list_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """Show the newest visit list (or ``list_id``) as a route grouped by city and district."""
    institution = _institution(session, viewer)
    context = _context(viewer, session, institution, list_id)
    visits = [visit for group in context["groups"] for visit in group.visits]
    first, last = (page - 1) * PAGE_SIZE, page * PAGE_SIZE
    shown = {id(visit) for visit in visits[first:last]}
    context["groups"] = [
        group.__class__(
            city=group.city,
            district=group.district,
            visits=[visit for visit in group.visits if id(visit) in shown],
        )
        for group in context["groups"]
        if any(id(visit) in shown for visit in group.visits)
    ]
    work_list = context["work_list"]
    context["page"] = Page(items=visits[first:last], total=len(visits), page=page, size=PAGE_SIZE)
    context["page_url"] = lambda number: (
        "/visits?" + urlencode({**({"list_id": work_list.id} if work_list else {}), "page": number})
    )
    return render(viewer, "outreach/visits.html", context, active_nav="visits")


@router.post("/visits", dependencies=[CsrfChecked])
def build_visit_list(
    viewer: WorkCases,
    session: SessionDep,
    agent_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    queue: Annotated[str, Form(max_length=32)] = "",
    day: Annotated[date | None, Form()] = None,
) -> Response:
    """Build a visit list through the gate, routed, and show it."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        work_list, _views = service.build_visit_list(
            session,
            principal=viewer.principal,
            institution=institution,
            agent_id=agent_id,
            queue_code=queue.strip() or None,
            day=day,
        )
    except NotFound:
        raise
    except RecoupError as error:
        return redirect("/visits", request=viewer.request, message=_refused(viewer, error))
    return redirect(
        f"/visits?list_id={work_list.id}",
        request=viewer.request,
        message=Flash(
            "outreach.flash.list_built",
            params={"allowed": str(work_list.allowed), "blocked": str(work_list.blocked)},
        ),
    )


@router.post("/visits/lists/{list_id}/sheet", dependencies=[CsrfChecked])
def route_sheet(
    viewer: WorkCases,
    session: SessionDep,
    list_id: RowId,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Show the printable route sheet with the addresses in the clear (reason audited)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    work_list = outreach.visible_list(
        session, principal=viewer.principal, institution_id=institution.id, list_id=list_id
    )
    try:
        if not viewer.allows("pii:reveal"):
            raise PermissionDenied("your role may not see addresses")
        reason = " ".join(reason.split())
        if len(reason) < MIN_REASON_LENGTH:
            raise ValidationFailed(
                "reason: say why you print the addresses (at least 5 characters)"
            )
    except RecoupError as error:
        return redirect(
            f"/visits?list_id={list_id}", request=viewer.request, message=_refused(viewer, error)
        )
    audit.record(
        session,
        actor=viewer.principal.actor,
        action="outreach.route_sheet_printed",
        object_type="work_list",
        object_id=work_list.id,
        institution_id=institution.id,
        details={"reason": reason, "visits": work_list.allowed},
    )
    context = _context(viewer, session, institution, list_id, revealed=True)
    response = render(viewer, "outreach/visit_sheet.html", context, active_nav="visits")
    response.headers.update(NO_STORE_HEADERS)
    return response


@router.post("/visits/entries/{entry_id}/result", dependencies=[CsrfChecked])
def record_visit(
    viewer: WorkCases,
    session: SessionDep,
    entry_id: RowId,
    visit_id: Annotated[str, Form(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")],
    outcome: Annotated[str, Form(max_length=24)],
    visited_at: Annotated[str, Form(max_length=32)],
    notes: Annotated[str, Form(max_length=2000)] = "",
    record_ref: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Record what came of a visit (outcome, notes, the recording's id) in the contact log."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    entry = repository.get_entry(session, institution_id=institution.id, entry_id=entry_id)
    if entry is None:
        raise NotFound(f"no visit list entry {entry_id}")
    back = f"/visits?list_id={entry.work_list_id}"
    try:
        try:
            local = datetime.fromisoformat(visited_at)
        except ValueError:
            raise ValidationFailed("visited_at: give the date and time of the visit") from None
        if local.tzinfo is None:
            local = local.replace(tzinfo=clock.zone(institution.timezone))
        report, _created = service.report_visit(
            session,
            principal=viewer.principal,
            institution=institution,
            given=outreach.ReportInput(
                external_id=visit_id,
                entry_id=entry_id,
                happened_at=local,
                outcome=outcome,
                notes=notes,
                record_ref=record_ref,
            ),
        )
    except NotFound:
        raise
    except RecoupError as error:
        return redirect(back, request=viewer.request, message=_refused(viewer, error))
    key = "outreach.flash.visit_violation" if report.violation else "outreach.flash.visit_recorded"
    return redirect(
        back,
        request=viewer.request,
        message=Flash(
            key,
            level="warning" if report.violation else "success",
            params={"rules": ", ".join(report.rule_ids)},
        ),
    )
