"""Pages of the contact log: a debtor's contacts, on the debtor page and on a page of their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from recoup.contact import service
from recoup.contact.api import attempt_read
from recoup.deps import SessionDep
from recoup.identity.scoping import get_scoped
from recoup.kit.pagination import MAX_PAGE, PageRequest
from recoup.models.debtor import Debtor
from recoup.web.templating import Viewer, page_url_for, render, viewer_with

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ReadDebtors = Annotated[Viewer, viewer_with("debtors:read")]


@router.get("/debtors/{debtor_id}/contacts", response_class=HTMLResponse)
def contact_log(
    viewer: ReadDebtors,
    session: SessionDep,
    debtor_id: RowId,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    """Show a debtor's contact log, newest first (a panel of the debtor page with HTMX)."""
    assert viewer.principal is not None
    debtor = get_scoped(session, Debtor, debtor_id, viewer.principal)
    result = service.contact_log(
        session,
        principal=viewer.principal,
        debtor_id=debtor.id,
        page=PageRequest(page, PAGE_SIZE),
    )
    context: dict[str, Any] = {
        "debtor": {"id": debtor.id, "external_id": debtor.external_id},
        "attempts": [attempt_read(row).model_dump() for row in result.items],
        "page": result,
        "page_url": page_url_for(viewer.request),
    }
    if viewer.request.headers.get("hx-request") == "true":
        return render(viewer, "contact/_log.html", context, partial=True)
    return render(viewer, "contact/log.html", context, active_nav="debtors")
