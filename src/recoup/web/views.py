"""Shell pages: the language switch and the sections still to come."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse

from recoup.config import get_settings
from recoup.web import localization
from recoup.web.templating import Viewer, render, safe_next, viewer_with

router = APIRouter(include_in_schema=False)

LOCALE_COOKIE_SECONDS = 365 * 24 * 3600


@router.get("/lang")
def switch_language(
    locale: Annotated[str, Query(max_length=16)] = localization.DEFAULT_LOCALE,
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> RedirectResponse:
    """Remember the viewer's language in a cookie and go back to the page they were on."""
    response = RedirectResponse(safe_next(next), status_code=303)
    chosen = localization.supported(locale) or localization.DEFAULT_LOCALE
    response.set_cookie(
        localization.LOCALE_COOKIE,
        chosen,
        max_age=LOCALE_COOKIE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=not get_settings().is_development,
        path="/",
    )
    return response


def _coming_soon(viewer: Viewer, section: str) -> HTMLResponse:
    return render(viewer, "coming_soon.html", active_nav=section)


@router.get("/imports", response_class=HTMLResponse)
def imports(viewer: Annotated[Viewer, viewer_with("dq:read")]) -> HTMLResponse:
    """Imports and data quality (arrives with a later release)."""
    return _coming_soon(viewer, "imports")
