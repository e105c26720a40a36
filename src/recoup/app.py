"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from inspect import isawaitable
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from recoup import app_registry, idempotency
from recoup.config import get_settings
from recoup.deps import build_routes, commit_only_on_success
from recoup.kit.asgi import Admission, Unexpected
from recoup.kit.errors import RecoupError, TooManyRequests, ValidationFailed
from recoup.kit.schemas import Problem

logger = logging.getLogger("recoup")

PROBLEM = "application/problem+json"
DOCS_ASSETS = "/docs-assets"

# The errors any API route may answer with; every one is a problem+json body.
PROBLEM_STATUSES: dict[int, str] = {
    401: "Not authenticated: no, an expired or an unknown bearer token or API key",
    403: "Forbidden: the caller's role or key scope does not allow this",
    404: "Not found: no such object within the caller's institution",
    409: "Conflict: the object's current state does not allow this",
    413: "Request too large",
    422: "Validation failed: the request names the fields it got wrong",
    429: "Too many requests: slow down and retry later",
    503: "Busy: more requests than the server takes at once; retry after Retry-After seconds",
}


# What a readiness check may answer when all is well ("embedded": no broker to check).
READY_STATES = frozenset({"ok", "embedded"})


def readiness() -> dict[str, str]:
    """Check the database and the job broker; return each one's state ("ok" or the error)."""
    from recoup.db import ping
    from recoup.kit import jobs

    checks: dict[str, str] = {}
    try:
        ping()
        checks["database"] = "ok"
    except Exception as error:
        logger.warning("readiness: the database did not answer: %s", error)
        checks["database"] = f"unreachable ({type(error).__name__})"
    try:
        checks["broker"] = "ok" if jobs.ping_broker() else "embedded"
    except Exception as error:
        logger.warning("readiness: the job broker did not answer: %s", error)
        checks["broker"] = f"unreachable ({type(error).__name__})"
    return checks


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Return an RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def refuse_nul_characters(request: Request) -> None:
    """Refuse a NUL character in a request's path, query, JSON or form: no Recoup text needs one,
    and PostgreSQL cannot store one (it would be a 500, not a 422, at the first write)."""
    texts = [
        *request.path_params.values(),
        *request.query_params.keys(),
        *request.query_params.values(),
    ]
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        # FastAPI has read and kept the body already; JSON can only spell NUL as an escape.
        body = await request.body()
        if b"\\u0000" in body:
            # Not JSON at all: the body's own validation answers that.
            with contextlib.suppress(ValueError):
                texts.extend(_strings_in(json.loads(body)))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        texts.extend(str(key) for key in form)
        texts.extend(value for value in form.values() if isinstance(value, str))
    if any("\x00" in str(text) for text in texts):
        raise ValidationFailed("text with a NUL character (U+0000) is not accepted")


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


def create_app() -> FastAPI:
    """Build the Recoup web application."""
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers and database look-ups run in this pool; every admitted request
        # (and its error page) must find a thread, or the line stops moving.
        limiter = to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, 2 * settings.max_concurrent_requests)
        # Built before the first request, off the event loop: no page's first visit holds it.
        await to_thread.run_sync(build_routes, app)
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
        dependencies=[
            Depends(refuse_nul_characters),
            Depends(idempotency.guard, scope="function"),
        ],
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

    @app.get("/readyz", tags=["health"], responses={503: {"model": Problem}})
    def readyz() -> JSONResponse:
        """Tell a load balancer whether to send traffic here: the database answers, and the
        job broker too when one is configured (503 problem+json naming what failed)."""
        checks = readiness()
        failed = {name: state for name, state in checks.items() if state not in READY_STATES}
        if failed:
            detail = "; ".join(f"{name}: {state}" for name, state in sorted(failed.items()))
            return problem(503, "Not ready", detail, checks=checks)
        return JSONResponse({"status": "ready", "checks": checks})

    idempotency.install(app)
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
    document = app.openapi

    def openapi() -> dict[str, Any]:
        return idempotency.declare(declare_problems(document()))

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _busy() -> JSONResponse:
    response = problem(503, "Service Unavailable", "the server is busy; try again shortly")
    response.headers["Retry-After"] = "2"
    return response


def _is_lock_timeout(error: OperationalError) -> bool:
    message = str(error.orig).lower()
    return "database is locked" in message or "database is busy" in message


def declare_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem+json error answers of every API operation in an OpenAPI document."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    reference = {"$ref": "#/components/schemas/Problem"}
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in PROBLEM_STATUSES.items():
                responses[str(status)] = {
                    "description": description,
                    "content": {PROBLEM: {"schema": reference}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return document


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
