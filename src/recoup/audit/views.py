"""The audit trail page for auditors and admins: filter by action, actor and date."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from recoup.audit import service
from recoup.deps import SessionDep
from recoup.kit.clock import start_of_day
from recoup.kit.errors import ValidationFailed
from recoup.kit.pagination import PageRequest
from recoup.web.templating import Viewer, page_url_for, render, viewer_with

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
KNOWN_ACTIONS = (
    "auth.login",
    "auth.login_failed",
    "auth.login_locked",
    "pii.reveal",
    "user.create",
    "apikey.create",
    "apikey.revoke",
    "payment.record",
    "audit.chain_keyed",
    "audit.key_rotate",
)


def _day(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    viewer: Annotated[Viewer, viewer_with("audit:read")],
    session: SessionDep,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=128)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """List audit events newest first; dates are days in the viewer's institution time zone."""
    assert viewer.principal is not None
    filter_error = ""
    try:
        first_day, last_day = _day(since), _day(until)
    except ValueError:
        first_day = last_day = None
        filter_error = viewer.text("audit.bad_date")
    moment_from: datetime | None = start_of_day(first_day, viewer.timezone) if first_day else None
    moment_until: datetime | None = (
        start_of_day(last_day + timedelta(days=1), viewer.timezone) if last_day else None
    )
    wanted_action, wanted_actor = action.strip() or None, actor.strip() or None
    try:
        result = service.browse(
            session,
            principal=viewer.principal,
            page=PageRequest(page, PAGE_SIZE),
            since=moment_from,
            until=moment_until,
            action=wanted_action,
            actor=wanted_actor,
        )
    except ValidationFailed:
        filter_error = viewer.text("audit.bad_range")
        result = service.browse(
            session,
            principal=viewer.principal,
            page=PageRequest(page, PAGE_SIZE),
            action=wanted_action,
            actor=wanted_actor,
        )
    context: dict[str, Any] = {
        "page": result,
        "page_url": page_url_for(viewer.request),
        "filters": {"action": action, "actor": actor, "since": since, "until": until},
        "filter_error": filter_error,
        "known_actions": KNOWN_ACTIONS,
    }
    return render(viewer, "audit/list.html", context, active_nav="audit")
