"""``Annotated`` dependency aliases so route handlers stay short."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute, _IncludedRouter, request_response
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute

from recoup.db import get_session, refuse

# scope="function": the commit runs before the response is sent, so a failed commit is a
# 500 the client sees, never a 200 for work that was rolled back.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]

# The route's answer, kept on the request's state for dependencies that finish after it
# (``recoup.idempotency`` stores it with the key before the commit).
RESPONSE_STATE = "recoup_response"
_WRAPPED = "__recoup_commits_only_on_success__"


def _refusing(handler: RouteHandler) -> RouteHandler:
    async def handle(request: Request) -> Response:
        response = await handler(request)
        setattr(request.state, RESPONSE_STATE, response)
        if response.status_code >= 400:
            refuse(request)  # read by get_session as the handler's dependencies close
        return response

    return handle


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI keeps an included router as one entry that holds the router's own routes.
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def commit_only_on_success(app: FastAPI) -> None:
    """Make every route's unit of work roll back when it answers 4xx/5xx, not only on errors.

    Routes of included routers get their handler when FastAPI first builds them, from
    ``get_route_handler``: that is what is wrapped (before the app serves a request).
    """
    for route in _api_routes(app.router.routes):
        if getattr(route, _WRAPPED, False):
            continue
        make_handler = route.get_route_handler

        def wrapped(make_handler: Callable[[], RouteHandler] = make_handler) -> RouteHandler:
            return _refusing(make_handler())

        setattr(route, "get_route_handler", wrapped)  # noqa: B010
        setattr(route, _WRAPPED, True)
        route.app = request_response(wrapped())


def _build_included(routes: Iterable[BaseRoute], seen: set[int]) -> int:
    built = 0
    for route in routes:
        if not isinstance(route, _IncludedRouter) or id(route) in seen:
            continue
        seen.add(id(route))
        candidates = route.effective_candidates()
        route.effective_low_priority_routes()
        built += len(candidates)
        built += _build_included(candidates, seen)  # type: ignore[arg-type]
        built += _build_included(route.original_router.routes, seen)
    return built


def build_routes(app: FastAPI) -> int:
    """Build every included router's routes now and return how many were built.

    FastAPI builds an included router's routes (their dependencies and request models) on the
    first request that reaches the router, in the event loop: that first request to a page held
    every other request, ``/healthz`` too, for as long as the building took. Called once as
    the app starts (in a worker thread), no request builds anything.
    """
    return _build_included(app.router.routes, set())
