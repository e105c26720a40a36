"""Shell pages: the language switch and the site icon."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response

from recoup.config import get_settings
from recoup.web import localization
from recoup.web.templating import safe_next

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


@router.get("/favicon.ico")
def favicon() -> Response:
    """Serve the site icon from the app's own files (browsers ask for it on every page)."""
    icon = resources.files("recoup.web").joinpath("static", "favicon.ico").read_bytes()
    return Response(
        icon, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )
