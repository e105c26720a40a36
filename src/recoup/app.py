"""The FastAPI application factory."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recoup import app_registry
from recoup.config import get_settings
from recoup.kit.errors import RecoupError

logger = logging.getLogger("recoup")

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Return an RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app() -> FastAPI:
    """Build the Recoup web application."""
    settings = get_settings()
    app = FastAPI(
        title="Recoup",
        summary="Collections platform API",
        version="0.1.0",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )

    @app.exception_handler(RecoupError)
    async def _domain_error(_request: Request, error: RecoupError) -> JSONResponse:
        return problem(error.status_code, error.title, error.message, **error.extra)

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

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Tell a load balancer the process is up."""
        return {"status": "ok", "env": settings.env.value}

    app_registry.register(app)
    return app


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
