"""ASGI guards that keep one process answering under load and after failures.

``Admission`` lets at most ``limit`` requests run at once (the size of the database pool),
queues the rest in arrival order for up to ``wait_seconds`` and answers a fast 503 with
``Retry-After`` beyond that, so a burst never exhausts the pool and never freezes the
event loop. Health checks and static files skip the line: a load balancer must see a
busy process as alive.

``Unexpected`` turns an exception that escaped every handler into the app's 500 answer
and does not re-raise it, so the server keeps the client's keep-alive connection instead
of closing it under a response the client believes complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("recoup")

PROBLEM = "application/problem+json"
UNQUEUED_PATHS = ("/healthz", "/static/", "/docs-assets/", "/favicon.ico")


async def send_busy(send: Send, *, retry_after: int, detail: str) -> None:
    """Answer 503 problem+json telling the client when to try again."""
    body = json.dumps(
        {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Admission:
    """Run at most ``limit`` requests at once; the rest wait in line or get 503."""

    def __init__(self, app: ASGIApp, *, limit: int, wait_seconds: float, max_waiting: int) -> None:
        self.app = app
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.max_waiting = max_waiting
        self.waiting = 0
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; test clients may run the app on several.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.limit))
        return self._slots[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(UNQUEUED_PATHS):
            await self.app(scope, receive, send)
            return
        slots = self._semaphore()
        retry_after = max(1, math.ceil(self.wait_seconds))
        if slots.locked() and self.waiting >= self.max_waiting:
            await send_busy(
                send, retry_after=retry_after, detail="the server is busy; try again shortly"
            )
            return
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_seconds):
                await slots.acquire()
        except TimeoutError:
            await send_busy(
                send, retry_after=retry_after, detail="the server is busy; try again shortly"
            )
            return
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()


ErrorHandler = Callable[[Request, Exception], Response | Awaitable[Response]]


class Unexpected:
    """Answer an escaped exception with ``handler``'s response and keep the connection."""

    def __init__(self, app: ASGIApp, *, handler: Callable[[], ErrorHandler]) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as error:
            if started:
                raise
            response: Any = self.handler()(Request(scope, receive), error)
            if isinstance(response, Awaitable):
                response = await response
            await response(scope, receive, send)
