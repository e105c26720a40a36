"""The ASGI guards: a bounded line with fast 503s, health checks that skip it, no re-raise."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from recoup.app import create_app
from recoup.kit.asgi import Admission


def _held_app(
    release: asyncio.Event, *, limit: int, wait: float, max_waiting: int = 10
) -> Admission:
    async def slow(_request: Request) -> PlainTextResponse:
        await release.wait()
        return PlainTextResponse("done")

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    inner = Starlette(routes=[Route("/slow", slow), Route("/healthz", health)])
    return Admission(inner, limit=limit, wait_seconds=wait, max_waiting=max_waiting)


def _client(app: Admission) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def on_a_loop_of_its_own(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    """Run an async test with ``asyncio.run`` in a thread of its own.

    A page test earlier in the same process leaves Playwright's sync API holding its event
    loop as the main thread's running loop, where no other loop may then run.
    """

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, test(*args, **kwargs)).result()

    return run


class TestAdmission:
    @on_a_loop_of_its_own
    async def test_a_request_beyond_the_limit_waits_then_gets_503_with_retry_after(self) -> None:
        release = asyncio.Event()
        app = _held_app(release, limit=1, wait=0.2)
        async with _client(app) as client:
            first = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            second = await client.get("/slow")
            assert second.status_code == 503
            assert second.headers["retry-after"] == "1"
            assert second.headers["content-type"] == "application/problem+json"
            release.set()
            assert (await first).status_code == 200

    @on_a_loop_of_its_own
    async def test_a_waiting_request_is_served_when_a_slot_frees(self) -> None:
        release = asyncio.Event()
        app = _held_app(release, limit=1, wait=5)
        async with _client(app) as client:
            first = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            release.set()
            assert [r.status_code for r in await asyncio.gather(first, second)] == [200, 200]

    @on_a_loop_of_its_own
    async def test_a_full_line_refuses_at_once(self) -> None:
        release = asyncio.Event()
        app = _held_app(release, limit=1, wait=30, max_waiting=0)
        async with _client(app) as client:
            first = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            second = await asyncio.wait_for(client.get("/slow"), timeout=2)
            assert second.status_code == 503
            release.set()
            await first

    @on_a_loop_of_its_own
    async def test_healthz_skips_the_line(self) -> None:
        release = asyncio.Event()
        app = _held_app(release, limit=1, wait=30)
        async with _client(app) as client:
            held = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            health = await asyncio.wait_for(client.get("/healthz"), timeout=2)
            assert health.status_code == 200
            release.set()
            await held


class TestUnexpectedErrors:
    def test_an_escaped_error_is_answered_without_being_re_raised(self) -> None:
        app: FastAPI = create_app()

        @app.get("/api/v1/boom")
        def boom() -> None:
            raise RuntimeError("a bug")

        # raise_server_exceptions=True: a re-raised error (what made uvicorn drop the
        # keep-alive connection after sending the 500) would surface here.
        with TestClient(app, raise_server_exceptions=True) as client:
            response = client.get("/api/v1/boom")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "logged" in response.json()["detail"]


class TestApiDocs:
    def test_the_docs_page_loads_nothing_from_outside(self) -> None:
        import re

        with TestClient(create_app()) as client:
            page = client.get("/docs")
            assert page.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert assets
            for asset in assets:
                assert asset.startswith("/"), f"the docs page loads {asset} from outside"
                assert client.get(asset).status_code == 200
