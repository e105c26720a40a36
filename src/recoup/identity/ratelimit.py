"""Rate limits on the API: so many requests a minute per API key, per signed-in user, and per
IP when anonymous.

Every request under ``/api/`` made with an API key counts against that key (its prefix); one
made by a signed-in user (session cookie, bearer token from ``/api/v1/auth/token``) counts
against that user, whichever session or token they use; a request with no credentials, with
credentials that fail, or to a public API path (the sign-in itself) counts against the
caller's IP address. Failed sign-ins are also locked out per user name and per address
(``LoginLocked``).

The limit is a moving window of one minute (``limits``' moving-window strategy): at most
``per_minute`` requests in any 60 seconds. The counters live in Redis when
``RECOUP_RATE_LIMIT_URL`` (or else ``RECOUP_JOBS_URL``) names a Redis server, so every
process and machine shares them; in the process's memory otherwise. When the shared store
cannot be reached the request is let through (and logged): a broken counter must not take
the API down.

Answers carry the IETF draft headers (draft-ietf-httpapi-ratelimit-headers) ``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds) and ``RateLimit-Policy``; a refusal is
``429`` problem+json with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recoup.config import Settings, get_settings
from recoup.deps import SessionDep
from recoup.identity.dependencies import SESSION_COOKIE, current_principal
from recoup.identity.permissions import is_public_path
from recoup.identity.principal import Principal
from recoup.institutions.settings import settings_of
from recoup.kit.errors import TooManyRequests
from recoup.models.institution import Institution

logger = logging.getLogger("recoup.ratelimit")

API_PREFIX = "/api/"
WINDOW_SECONDS = 60
VERDICT_STATE = "recoup_rate_limit"
KEY_PREFIX = "recoup-ratelimit"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one request's count says: allowed or not, and the window's numbers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers of this count."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={WINDOW_SECONDS}",
        }


class RateLimited(TooManyRequests):
    """The caller sent more requests in the last minute than its limit allows."""

    def __init__(self, verdict: Verdict, *, who: str) -> None:
        super().__init__(
            f"{who} may send {verdict.limit} requests a minute; "
            f"retry after {verdict.reset_seconds} seconds",
            retry_after_seconds=verdict.reset_seconds,
        )
        self.verdict = verdict

    @property
    def headers(self) -> dict[str, str]:
        return {**self.verdict.headers, "Retry-After": str(self.retry_after_seconds)}


def storage_url(settings: Settings) -> str:
    """Where the counters live: the rate-limit URL, else a Redis job store's, else memory."""
    if settings.rate_limit_url:
        return settings.rate_limit_url
    if settings.jobs_url.startswith(("redis://", "rediss://")):
        return settings.jobs_url
    return "memory"


class RateLimiter:
    """Moving-window counters per identity, in memory or in a shared Redis."""

    def __init__(self, url: str = "memory") -> None:
        self.url = url
        self.shared = url != "memory"
        self.storage: Storage = (
            RedisStorage(url, key_prefix=KEY_PREFIX) if self.shared else MemoryStorage()
        )
        self.strategy = MovingWindowRateLimiter(self.storage)

    def hit(self, identity: str, per_minute: int) -> Verdict:
        """Count one request of ``identity``; tell whether it is within ``per_minute``."""
        item = RateLimitItemPerMinute(per_minute)
        try:
            allowed = self.strategy.hit(item, identity)
            stats = self.strategy.get_window_stats(item, identity)
        except Exception as error:  # the store is down: let the request through
            logger.warning("rate limit store %s failed, not limiting: %s", self.url, error)
            return Verdict(True, per_minute, per_minute, WINDOW_SECONDS)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, per_minute, max(0, stats.remaining), min(reset, WINDOW_SECONDS))


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _presents_credentials(request: Request) -> bool:
    headers = request.headers
    return (
        headers.get("authorization") is not None
        or headers.get("x-api-key") is not None
        or SESSION_COOKIE in request.cookies
    )


def _key_limit(session: Session, principal: Principal, default: int) -> int:
    if principal.institution_id is None:
        return default
    institution = session.get(Institution, principal.institution_id)
    if institution is None:
        return default
    override = settings_of(institution).integration.api_requests_per_minute
    return override or default


async def rate_limit(request: Request, session: SessionDep) -> None:
    """Count an API request against its API key, its user or its IP; refuse it (429) past the
    limit.

    An app-wide dependency: it runs before the route's own, so a refused request does no work.
    """
    path = request.url.path
    if not path.startswith(API_PREFIX):
        return
    limiter: RateLimiter = request.app.state.rate_limiter
    settings = get_settings()
    anonymous = (f"ip:{_client_ip(request)}", settings.anonymous_requests_per_minute, "this IP")
    if is_public_path(path) or not _presents_credentials(request):
        await _count(request, limiter, *anonymous)
        return
    try:
        principal = await current_principal(request, session)
    except HTTPException:
        await _count(request, limiter, *anonymous)
        raise
    if principal.kind == "user":
        await _count(
            request,
            limiter,
            f"user:{principal.user_id}",
            settings.user_requests_per_minute,
            "this user",
        )
        return
    if principal.kind != "api_key":
        return  # the platform's own jobs and commands, not callers
    per_minute = await run_in_threadpool(
        _key_limit, session, principal, settings.api_key_requests_per_minute
    )
    await _count(request, limiter, f"key:{principal.username}", per_minute, "this API key")


async def _count(
    request: Request, limiter: RateLimiter, identity: str, per_minute: int, who: str
) -> None:
    if limiter.shared:
        verdict = await run_in_threadpool(limiter.hit, identity, per_minute)
    else:
        verdict = limiter.hit(identity, per_minute)
    setattr(request.state, VERDICT_STATE, verdict)
    if not verdict.allowed:
        raise RateLimited(verdict, who=who)


class RateLimitHeaders:
    """Add the ``RateLimit-*`` headers of the request's count to its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            verdict = (scope.get("state") or {}).get(VERDICT_STATE)
            if message["type"] == "http.response.start" and isinstance(verdict, Verdict):
                headers = [
                    (name, value)
                    for name, value in message.get("headers") or []
                    if not name.lower().startswith(b"ratelimit")
                ]
                headers.extend(
                    (name.lower().encode(), value.encode())
                    for name, value in verdict.headers.items()
                )
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Give ``app`` its counters, the limit on every API route and the answers' headers.

    Called before the routers are included: they take the app's dependencies as they join.
    """
    app.state.rate_limiter = RateLimiter(storage_url(settings))
    app.router.dependencies.insert(0, Depends(rate_limit))
    app.add_middleware(RateLimitHeaders)
