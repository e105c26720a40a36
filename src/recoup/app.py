"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from inspect import isawaitable
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from recoup import app_registry
from recoup.config import get_settings
from recoup.deps import commit_only_on_success
from recoup.kit.asgi import Admission, Unexpected
from recoup.kit.errors import RecoupError, TooManyRequests

logger = logging.getLogger("recoup")

PROBLEM = "application/problem+json"
DOCS_ASSETS = "/docs-assets"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Return an RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app() -> FastAPI:
    """Build the Recoup web application."""
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers and database look-ups run in this pool; every admitted request
        # (and its error page) must find a thread, or the line stops moving.
        limiter = to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, 2 * settings.max_concurrent_requests)
        if not settings.embedded_worker:
            yield
            return
        from recoup.kit.jobs import Worker

        worker = Worker(threads=settings.worker_threads)
        worker.start()
        try:
            yield
        finally:
            worker.stop(timeout=settings.shutdown_seconds)

    # The API docs' scripts and styles are served by the app itself: no CDN (banks run intranets).
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        redoc_url=None,
        lifespan=lifespan,
        title="Recoup",
        summary="Collections platform API",
        version="0.1.0",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )

    @app.exception_handler(RecoupError)
    async def _domain_error(_request: Request, error: RecoupError) -> JSONResponse:
        response = problem(error.status_code, error.title, error.message, **error.extra)
        if isinstance(error, TooManyRequests):
            response.headers.update(error.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(part) for part in item.get("loc", ())),
                "message": item.get("msg", ""),
            }
            for item in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "Validation failed", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        response = problem(error.status_code, _title(error.status_code), str(error.detail))
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=error)
        return problem(
            500, "Internal error", "something went wrong on our side; it has been logged"
        )

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_request: Request, error: PoolTimeout) -> JSONResponse:
        logger.warning("no database connection became free in time: %s", error)
        return _busy()

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, error: OperationalError) -> Response:
        if not _is_lock_timeout(error):
            answer = app.exception_handlers[Exception](request, error)
            return await answer if isawaitable(answer) else answer
        logger.warning("the database stayed locked past the busy timeout: %s", error)
        return _busy()

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Tell a load balancer the process is up (answered at once, whatever the load)."""
        return {"status": "ok", "env": settings.env.value}

    # Innermost: an escaped exception becomes the 500 answer without closing the connection.
    app.add_middleware(Unexpected, handler=lambda: app.exception_handlers[Exception])
    app_registry.register(app)
    commit_only_on_success(app)
    # Outermost: a burst beyond the database pool waits in line or gets a fast 503.
    app.add_middleware(
        Admission,
        limit=settings.max_concurrent_requests,
        wait_seconds=settings.request_queue_seconds,
        max_waiting=settings.max_queued_requests,
    )
    return app


def _busy() -> JSONResponse:
    response = problem(503, "Service Unavailable", "the server is busy; try again shortly")
    response.headers["Retry-After"] = "2"
    return response


def _is_lock_timeout(error: OperationalError) -> bool:
    message = str(error.orig).lower()
    return "database is locked" in message or "database is busy" in message


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
