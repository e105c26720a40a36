"""The call list page: build a list through the gate, click to call, export for a dialer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from recoup.audit import service as audit
from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.identity.pii import NO_STORE_HEADERS
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.errors import NotFound, PermissionDenied, RecoupError
from recoup.kit.masking import mask_text
from recoup.kit.pagination import MAX_PAGE, Page
from recoup.models.institution import Institution
from recoup.outreach import repository
from recoup.outreach import service as outreach
from recoup.outreach.dialer import rules, service
from recoup.web import labels
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
WorkCases = Annotated[Viewer, viewer_with("cases:work")]
CsrfChecked = Depends(csrf_protect)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(session, viewer.principal.institution_id, what="call lists")


def masked(view: outreach.EntryView) -> str:
    """Return an entry's contact point as a page shows it: masked."""
    point = view.contact_point
    return mask_text(point.value, point.kind) if point is not None else "—"


def _refused(viewer: Viewer, error: RecoupError) -> Flash:
    return Flash(
        "outreach.flash.refused",
        level="error",
        params={"message": labels.refusal(error, viewer.locale)},
    )


@router.get("/dialer", response_class=HTMLResponse)
def call_list_page(
    viewer: WorkCases,
    session: SessionDep,
    list_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """Show the newest call list (or ``list_id``): numbers to call, blocked ones with reasons."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    work_list, views = service.call_list(
        session, principal=viewer.principal, institution=institution, list_id=list_id
    )
    shown = views[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    paged: Page[Any] = Page(items=shown, total=len(views), page=page, size=PAGE_SIZE)
    lead = not viewer.principal.is_agent
    context: dict[str, Any] = {
        "work_list": work_list,
        "views": shown,
        "page": paged,
        "page_url": lambda number: (
            "/dialer?"
            + urlencode({**({"list_id": work_list.id} if work_list else {}), "page": number})
        ),
        "agents": repository.agents(session, institution_id=institution.id) if lead else [],
        "lead": lead,
        "today": clock.local_today(institution.timezone),
        "can_reveal": viewer.allows("pii:reveal"),
        "sip": bool(service.sip_template(institution)),
        "masked": masked,
    }
    return render(viewer, "outreach/dialer.html", context, active_nav="dialer")


@router.post("/dialer", dependencies=[CsrfChecked])
def build_call_list(
    viewer: WorkCases,
    session: SessionDep,
    agent_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    queue: Annotated[str, Form(max_length=32)] = "",
    day: Annotated[date | None, Form()] = None,
) -> Response:
    """Build a call list through the gate and show it."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        work_list, _views = service.build_call_list(
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
        return redirect("/dialer", request=viewer.request, message=_refused(viewer, error))
    return redirect(
        f"/dialer?list_id={work_list.id}",
        request=viewer.request,
        message=Flash(
            "outreach.flash.list_built",
            params={"allowed": str(work_list.allowed), "blocked": str(work_list.blocked)},
        ),
    )


@router.get("/dialer/lists/{list_id}/export.csv")
def export_masked(viewer: WorkCases, session: SessionDep, list_id: RowId) -> Response:
    """Download a call list as dialer CSV with masked numbers (audited)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    export = service.export_call_list(
        session, principal=viewer.principal, institution=institution, list_id=list_id
    )
    return Response(
        export.text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


@router.post("/dialer/lists/{list_id}/export", dependencies=[CsrfChecked])
def export_revealed(
    viewer: WorkCases,
    session: SessionDep,
    list_id: RowId,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Download a call list as dialer CSV with the numbers in the clear (reason audited)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    try:
        export = service.export_call_list(
            session,
            principal=viewer.principal,
            institution=institution,
            list_id=list_id,
            reveal_reason=reason,
        )
    except NotFound:
        raise
    except RecoupError as error:
        return redirect(
            f"/dialer?list_id={list_id}", request=viewer.request, message=_refused(viewer, error)
        )
    return Response(
        export.text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            **NO_STORE_HEADERS,
        },
    )


@router.post("/dialer/entries/{entry_id}/call", dependencies=[CsrfChecked])
def click_to_call(
    viewer: WorkCases,
    session: SessionDep,
    entry_id: RowId,
    via: Annotated[str, Form(pattern="^(tel|sip)$")] = "tel",
) -> Response:
    """Open the phone (``tel:``) or the softphone (SIP) on an allowed entry's number (audited)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    entry = repository.get_entry(session, institution_id=institution.id, entry_id=entry_id)
    if entry is None:
        raise NotFound(f"no call list entry {entry_id}")
    work_list = outreach.visible_list(
        session,
        principal=viewer.principal,
        institution_id=institution.id,
        list_id=entry.work_list_id,
    )
    if work_list.kind != "call" or not entry.allowed:
        raise NotFound(f"no call list entry {entry_id} to call")
    if not viewer.allows("pii:reveal"):
        raise PermissionDenied("your role may not see phone numbers")
    view = outreach.entry_views(session, institution_id=institution.id, entries=[entry])[0]
    if view.contact_point is None:
        raise NotFound(f"call list entry {entry_id} has no number")
    number = service.dialable(view.contact_point.value, region=str(institution.jurisdiction)[:2])
    links = rules.call_links(number, sip_template=service.sip_template(institution))
    target = links.sip if via == "sip" and links.sip else links.tel
    audit.record(
        session,
        actor=viewer.principal.actor,
        action="outreach.click_to_call",
        object_type="contact_point",
        object_id=view.contact_point.id,
        institution_id=institution.id,
        details={"entry_id": entry.id, "via": via if links.sip else "tel"},
    )
    response = RedirectResponse(target, status_code=303)
    response.headers.update(NO_STORE_HEADERS)
    return response
