"""``Annotated`` dependency aliases so route handlers stay short."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute, request_response
from sqlalchemy.orm import Session

from recoup.db import get_session, refuse

# scope="function": the commit runs before the response is sent, so a failed commit is a
# 500 the client sees, never a 200 for work that was rolled back.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def _refusing(handler: RouteHandler) -> RouteHandler:
    async def handle(request: Request) -> Response:
        response = await handler(request)
        if response.status_code >= 400:
            refuse(request)  # read by get_session as the handler's dependencies close
        return response

    return handle


def commit_only_on_success(app: FastAPI) -> None:
    """Make every route's unit of work roll back when it answers 4xx/5xx, not only on errors."""
    for route in app.router.routes:
        if isinstance(route, APIRoute):
            route.app = request_response(_refusing(route.get_route_handler()))
