"""What identity adds to the app: start-up secret checks, the body-size limit, login redirects."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recoup.config import get_settings
from recoup.identity.dependencies import NEW_CSRF_COOKIE_STATE, LoginRequired
from recoup.identity.ratelimit import install as install_rate_limits
from recoup.identity.secret import check_startup

PROBLEM = "application/problem+json"


class SecurityMiddleware:
    """Refuse bodies over ``max_body_bytes`` (413) and set a newly issued anonymous CSRF cookie."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_body_bytes
            except ValueError:
                too_large = True
            if too_large:
                await self._refuse(send)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Rendered as 413 problem+json by the app's HTTP error handler.
                    raise HTTPException(
                        413, f"the request body is larger than {self.max_body_bytes} bytes"
                    )
            return message

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = (scope.get("state") or {}).get(NEW_CSRF_COOKIE_STATE)
                if cookie:
                    headers = list(message.get("headers") or [])
                    headers.append((b"set-cookie", str(cookie).encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, limited_receive, send_with_cookie)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Content too large",
                "status": 413,
                "detail": f"the request body is larger than {self.max_body_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Check the secrets, add the security middleware and the login redirect to ``app``."""
    settings = get_settings()
    check_startup(settings)
    app.add_middleware(SecurityMiddleware, max_body_bytes=settings.max_body_bytes)
    install_rate_limits(app, settings)

    @app.exception_handler(LoginRequired)
    async def _login_required(_request: Request, error: LoginRequired) -> Any:
        return RedirectResponse(error.location, status_code=303)
