"""The letters page: the day's letters, queued and released, the print file, a letter to queue."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from recoup.deps import SessionDep
from recoup.identity.dependencies import csrf_protect
from recoup.identity.pii import NO_STORE_HEADERS
from recoup.institutions import repository as institutions
from recoup.kit import clock
from recoup.kit.errors import NotFound, PermissionDenied, RecoupError
from recoup.kit.masking import mask_name
from recoup.models.institution import Institution
from recoup.outreach import repository
from recoup.outreach.letters import service
from recoup.web import labels
from recoup.web.templating import Flash, Viewer, redirect, render, viewer_with

router = APIRouter(include_in_schema=False)

WorkCases = Annotated[Viewer, viewer_with("cases:work")]
CsrfChecked = Depends(csrf_protect)


def _institution(session: Session, viewer: Viewer) -> Institution:
    assert viewer.principal is not None
    return institutions.require_callers(session, viewer.principal.institution_id, what="letters")


@router.get("/letters", response_class=HTMLResponse)
def letters_page(
    viewer: WorkCases,
    session: SessionDep,
    day: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    """Show a day's letters: released to print, and queued for the dispatcher."""
    institution = _institution(session, viewer)
    day = day or clock.local_today(institution.timezone)
    released = service.released_letters(session, institution=institution, day=day)
    waiting = service.waiting_letters(session, institution=institution, day=day)
    debtors = repository.debtors_by_id(
        session,
        institution_id=institution.id,
        ids=sorted({m.debtor_id for m in [*released, *waiting]}),
    )
    context: dict[str, Any] = {
        "day": day,
        "released": released,
        "waiting": waiting,
        "debtor_ref": lambda message: debtors[message.debtor_id].external_id,
        "debtor_name": lambda message: mask_name(debtors[message.debtor_id].name),
        "templates": repository.approved_letter_templates(session, institution_id=institution.id),
        "can_print": viewer.allows("exports:write"),
    }
    return render(viewer, "outreach/letters.html", context, active_nav="letters")


@router.post("/letters", dependencies=[CsrfChecked])
def queue_letter(
    viewer: WorkCases,
    session: SessionDep,
    debtor_id: Annotated[str, Form(min_length=1, max_length=64)],
    template_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    day: Annotated[date | None, Form()] = None,
) -> Response:
    """Queue a letter through the gate for the day's print run (the debtor named by reference
    or id)."""
    assert viewer.principal is not None
    institution = _institution(session, viewer)
    day = day or clock.local_today(institution.timezone)
    back = f"/letters?day={day.isoformat()}"
    try:
        result = service.queue_letter(
            session,
            principal=viewer.principal,
            institution=institution,
            debtor_id=service.debtor_for_reference(
                session, principal=viewer.principal, institution=institution, reference=debtor_id
            ),
            template_id=template_id,
            day=day,
        )
    except NotFound:
        raise
    except RecoupError as error:
        message = Flash(
            "outreach.flash.refused",
            level="error",
            params={"message": labels.refusal(error, viewer.locale)},
        )
        return redirect(back, request=viewer.request, message=message)
    if result.message is None:
        return redirect(
            back,
            request=viewer.request,
            message=Flash(
                "outreach.flash.letter_blocked",
                level="warning",
                params={"rules": ", ".join(result.reasons)},
            ),
        )
    return redirect(back, request=viewer.request, message=Flash("outreach.flash.letter_queued"))


@router.post("/letters/batch.pdf", dependencies=[CsrfChecked])
def print_file(viewer: WorkCases, session: SessionDep, day: Annotated[date, Form()]) -> Response:
    """Download the day's print file (every released letter in one PDF; audited)."""
    assert viewer.principal is not None
    if not viewer.allows("exports:write"):
        raise PermissionDenied("your role may not print letters")
    institution = _institution(session, viewer)
    batch = service.print_batch(
        session, principal=viewer.principal, institution=institution, day=day
    )
    return Response(
        batch.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{batch.filename}.pdf"',
            **NO_STORE_HEADERS,
        },
    )


@router.get("/letters/manifest.csv")
def manifest(viewer: WorkCases, session: SessionDep, day: Annotated[date, Query()]) -> Response:
    """Download the day's print manifest (one row per letter, no personal data)."""
    assert viewer.principal is not None
    if not viewer.allows("exports:write"):
        raise PermissionDenied("your role may not print letters")
    institution = _institution(session, viewer)
    batch = service.print_batch(
        session, principal=viewer.principal, institution=institution, day=day
    )
    return Response(
        batch.manifest,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{batch.filename}.csv"'},
    )
