"""Error pages: browsers get a 403/404/… page in the layout, API clients keep problem+json."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from recoup.db import unit_of_work
from recoup.identity.dependencies import LoginRequired, current_web_principal
from recoup.identity.principal import Principal
from recoup.kit.errors import RecoupError
from recoup.web import labels
from recoup.web.templating import make_viewer, render, safe_next

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
PAGE_STATUSES = frozenset({400, 403, 404, 405, 413, 422, 429, 500})
_EXPLAINED = frozenset({400, 409, 422})
_NOT_PAGES = ("/api/", "/static/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz")


def wants_page(request: Request) -> bool:
    """Tell whether a failed request came from a browser page rather than an API client."""
    if request.url.path.startswith(_NOT_PAGES):
        return False
    if is_htmx(request):
        return True
    return "text/html" in request.headers.get("accept", "")


def is_htmx(request: Request) -> bool:
    """Tell whether HTMX sent the request (it swaps the answer into a page part)."""
    return request.headers.get("hx-request") == "true"


def login_redirect_for_htmx(request: Request) -> Response:
    """Send the whole browser page (not the swapped part) to the sign-in page and back."""
    current = urlsplit(request.headers.get("hx-current-url", ""))
    back = safe_next(f"{current.path}?{current.query}" if current.query else current.path)
    return Response(
        status_code=200, headers={"HX-Redirect": f"/login?next={quote(back, safe='/')}"}
    )


def error_page(request: Request, status_code: int, error: RecoupError | None = None) -> Response:
    """Render the error page for ``status_code`` in the layout, with the viewer's navigation.

    A refused request (400, 409, 422) also says why, in the viewer's language where the
    catalog knows the refusal; a 403 or 404 stays generic, so it tells nothing about the
    record asked for.
    """
    shown = status_code if status_code in PAGE_STATUSES else (500 if status_code >= 500 else 400)
    with unit_of_work(write=False) as session:
        principal = getattr(request.state, "principal", None)
        if not isinstance(principal, Principal) or principal.kind != "user":
            principal = current_web_principal(request, session)
        if principal is None and is_htmx(request) and status_code in {401, 403}:
            # The session ended while the page was open (its form then fails the CSRF check).
            return login_redirect_for_htmx(request)
        viewer = make_viewer(request, session, principal)
        explained = error is not None and error.status_code in _EXPLAINED
        detail = labels.refusal(error, viewer.locale) if error is not None and explained else None
        response = render(
            viewer,
            "errors/error.html",
            {"status_code": shown, "detail": detail},
            status_code=status_code,
        )
    return response


def install(app: FastAPI) -> None:
    """Wrap the app's domain and HTTP error handlers so browsers see pages instead of JSON."""
    previous_domain = app.exception_handlers[RecoupError]
    previous_http = app.exception_handlers[StarletteHTTPException]
    previous_unexpected = app.exception_handlers[Exception]
    previous_validation = app.exception_handlers[RequestValidationError]
    previous_login = app.exception_handlers.get(LoginRequired)

    async def answer(handler: Handler, request: Request, error: Exception) -> Response:
        response = handler(request, error)
        return await response if isawaitable(response) else response

    async def domain_error(request: Request, error: Exception) -> Response:
        if not isinstance(error, RecoupError) or not wants_page(request):
            return await answer(previous_domain, request, error)
        return await run_in_threadpool(error_page, request, error.status_code, error)

    async def http_error(request: Request, error: Exception) -> Response:
        if not isinstance(error, StarletteHTTPException) or not wants_page(request):
            return await answer(previous_http, request, error)
        response = await run_in_threadpool(error_page, request, error.status_code)
        for name, value in (error.headers or {}).items():
            response.headers.setdefault(name, value)
        return response

    async def validation_error(request: Request, error: Exception) -> Response:
        if not wants_page(request):
            return await answer(previous_validation, request, error)
        return await run_in_threadpool(error_page, request, 422)

    async def unexpected_error(request: Request, error: Exception) -> Response:
        response = await answer(previous_unexpected, request, error)
        if not wants_page(request):
            return response
        try:
            return await run_in_threadpool(error_page, request, 500)
        except Exception:  # the page itself failed: the logged problem+json answer stands
            return response

    async def login_required(request: Request, error: Exception) -> Response:
        if is_htmx(request):
            return login_redirect_for_htmx(request)
        if previous_login is not None:
            return await answer(previous_login, request, error)
        location = error.location if isinstance(error, LoginRequired) else "/login"
        return RedirectResponse(location, status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(RecoupError, domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
