"""Authentication and authorization for routes and pages — the one place permissions are enforced.

API routes::

    @router.get("/debtors", dependencies=[Depends(authorize("debtors:read"))])
    def list_debtors(principal: CurrentPrincipal, session: SessionDep) -> ...

or ``principal: Annotated[Principal, Depends(authorize("debtors:read"))]``. A caller is
recognised by ``Authorization: Bearer <jwt>``, an API key (``Authorization: Bearer rk_…`` or
``X-API-Key: rk_…``) or the web session cookie. Missing or bad credentials answer 401
problem+json with ``WWW-Authenticate``; a permission the caller lacks answers 403.

Pages::

    @router.get("/debtors", response_class=HTMLResponse)
    def debtors_page(
        request: Request, principal: Annotated[Principal, Depends(require_page("debtors:read"))]
    ): ...

    @router.post(
        "/users", dependencies=[Depends(require_page("users:manage")), Depends(csrf_protect)]
    )

An anonymous visitor of a page is redirected (303) to ``/login?next=<path>``; a signed-in user
without the permission gets 403. Forms carry ``<input type="hidden" name="csrf_token"
value="{{ csrf_token(request) }}">`` (HTMX: the ``X-CSRF-Token`` header); ``csrf_protect``
refuses a POST without the right token (403). ``current_web_principal(request, session)``
(a dependency; also ``OptionalWebPrincipal``) is the signed-in user or ``None``. The login
view calls ``service.authenticate`` then ``login_session(response, user)``; logout calls
``logout_session(response)``. The principal of the current request, once known, is also
on ``request.state.principal`` (for the layout's navigation: ``principal.can("audit:read")``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from recoup.config import get_settings
from recoup.deps import SessionDep
from recoup.identity import service
from recoup.identity.permissions import require_known
from recoup.identity.principal import Principal, principal_for_api_key, principal_for_user
from recoup.identity.rules import TokenRejected
from recoup.identity.secret import secret_key
from recoup.kit.errors import PermissionDenied
from recoup.models.identity import User

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Authorize",
    "CurrentPrincipal",
    "LoginRequired",
    "OptionalWebPrincipal",
    "Principal",
    "RequirePage",
    "RouteRule",
    "authorize",
    "csrf_protect",
    "csrf_token",
    "current_principal",
    "current_web_principal",
    "login_session",
    "logout_session",
    "require_page",
    "route_rules",
]

SESSION_COOKIE = "recoup_session"
CSRF_COOKIE = "recoup_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_SECONDS = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NEW_CSRF_COOKIE_STATE = "recoup_new_csrf_cookie"
AUTHENTICATED_STATE = "recoup_authenticated"

# Declared for the OpenAPI "Authorize" button; the credentials are read in ``_authenticate``.
_bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


class LoginRequired(Exception):
    """An anonymous visitor asked for a page; the app redirects them to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def location(self) -> str:
        return f"/login?next={quote(self.next_path, safe='/')}"


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(), salt=f"recoup.{purpose}")


def _unauthenticated(detail: str, *, error: str | None = None) -> StarletteHTTPException:
    challenge = 'Bearer realm="recoup"'
    if error:
        challenge += f', error="{error}"'
    return StarletteHTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def _set_cookie(response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=not get_settings().is_development,
        path="/",
    )


def login_session(response: Response, user: User) -> str:
    """Sign ``user`` in on this browser: set the session cookie; return its CSRF token."""
    token = secrets.token_urlsafe(32)
    payload = {"uid": user.id, "sv": user.session_version, "csrf": token}
    _set_cookie(
        response,
        SESSION_COOKIE,
        _serializer("session").dumps(payload),
        max_age=SESSION_MAX_AGE_SECONDS,
    )
    return token


def logout_session(response: Response) -> None:
    """Sign this browser out; other sessions stay (``service.end_all_sessions`` ends them)."""
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=not get_settings().is_development,
    )


def _session_payload(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        payload = _serializer("session").loads(raw, max_age=SESSION_MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not all(
        isinstance(payload.get(k), t) for k, t in (("uid", int), ("sv", int), ("csrf", str))
    ):
        return None
    return payload


def current_web_principal(request: Request, session: SessionDep) -> Principal | None:
    """Return the signed-in user of this browser, or ``None`` when anonymous (a dependency)."""
    payload = _session_payload(request)
    if payload is None:
        return None
    try:
        user = service.active_user(session, user_id=payload["uid"], session_version=payload["sv"])
    except TokenRejected:
        return None
    principal = principal_for_user(user)
    request.state.principal = principal
    return principal


OptionalWebPrincipal = Annotated[Principal | None, Depends(current_web_principal)]


def csrf_token(request: Request) -> str:
    """Return the CSRF token for this page's forms (setting a new cookie when needed)."""
    cached = getattr(request.state, "csrf_token", None)
    if isinstance(cached, str):
        return cached
    payload = _session_payload(request)
    token: str | None = payload["csrf"] if payload else None
    if token is None:
        raw = request.cookies.get(CSRF_COOKIE)
        if raw:
            try:
                loaded = _serializer("csrf").loads(raw)
                token = loaded if isinstance(loaded, str) else None
            except BadSignature:
                token = None
    if token is None:
        token = secrets.token_urlsafe(32)
        cookie = Response()
        _set_cookie(cookie, CSRF_COOKIE, _serializer("csrf").dumps(token), max_age=None)
        setattr(request.state, NEW_CSRF_COOKIE_STATE, cookie.headers["set-cookie"])
    request.state.csrf_token = token
    return token


def _expected_csrf(request: Request) -> str | None:
    payload = _session_payload(request)
    if payload is not None:
        return str(payload["csrf"])
    raw = request.cookies.get(CSRF_COOKIE)
    if not raw:
        return None
    try:
        loaded = _serializer("csrf").loads(raw)
    except BadSignature:
        return None
    return loaded if isinstance(loaded, str) else None


async def _check_csrf(request: Request) -> None:
    expected = _expected_csrf(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise PermissionDenied(
            "the form's CSRF token is missing or stale; reload the page and try again"
        )


async def csrf_protect(request: Request) -> None:
    """Refuse an unsafe request (POST, PUT, PATCH, DELETE) without the page's CSRF token (403)."""
    if request.method not in SAFE_METHODS:
        await _check_csrf(request)


def _identify(request: Request, session: Session) -> tuple[Principal, bool]:
    """Return the caller and whether it came by the session cookie (database work: a thread)."""
    authorization = request.headers.get("authorization")
    api_key_header = request.headers.get("x-api-key")
    try:
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise _unauthenticated(
                    "the Authorization header must be 'Bearer <token>'", error="invalid_request"
                )
            if service.looks_like_api_key(credential):
                return principal_for_api_key(service.api_key_for(session, credential)), False
            return principal_for_user(service.user_for_token(session, credential)), False
        if api_key_header is not None:
            return principal_for_api_key(
                service.api_key_for(session, api_key_header.strip())
            ), False
        web_principal = current_web_principal(request, session)
    except TokenRejected as error:
        raise _unauthenticated(str(error), error="invalid_token") from None
    if web_principal is None:
        raise _unauthenticated("sign in, or send a bearer token or an API key")
    return web_principal, True


async def _authenticate(request: Request, session: SessionDep) -> Principal:
    """Return the caller from a bearer token, an API key or the session cookie; 401 otherwise.

    The database look-up runs in the thread pool: the event loop never waits on the database.
    """
    cached = getattr(request.state, AUTHENTICATED_STATE, None)
    if isinstance(cached, Principal):
        return cached
    principal, by_cookie = await run_in_threadpool(_identify, request, session)
    if by_cookie and request.method not in SAFE_METHODS:
        await _check_csrf(request)
    setattr(request.state, AUTHENTICATED_STATE, principal)
    request.state.principal = principal
    return principal


class Authorize:
    """A route dependency that authenticates the caller and requires one permission."""

    def __init__(self, permission: str) -> None:
        self.permission = require_known(permission)

    async def __call__(
        self,
        request: Request,
        session: SessionDep,
        _bearer: Annotated[str | None, Depends(_bearer_scheme)] = None,
        _api_key: Annotated[str | None, Depends(_api_key_scheme)] = None,
    ) -> Principal:
        principal = await _authenticate(request, session)
        if not principal.can(self.permission):
            raise PermissionDenied(f"{_who(principal)} may not do this (needs {self.permission})")
        return principal

    def __repr__(self) -> str:
        return f"authorize({self.permission!r})"


def _who(principal: Principal) -> str:
    if principal.kind == "api_key":
        return "this API key"
    return f"the {principal.role} role"


def authorize(permission: str) -> Authorize:
    """Return the dependency requiring ``permission`` (the matrix: ``identity.permissions``)."""
    return Authorize(permission)


async def current_principal(request: Request, session: SessionDep) -> Principal:
    """Return the caller already authorized by ``authorize`` on this route (or authenticate it)."""
    return await _authenticate(request, session)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class RequirePage:
    """A page dependency: the user must hold one permission; anonymous visitors go to /login."""

    def __init__(self, permission: str) -> None:
        self.permission = require_known(permission)

    def __call__(self, request: Request, session: SessionDep) -> Principal:
        principal = current_web_principal(request, session)
        if principal is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        if not principal.can(self.permission):
            raise PermissionDenied(
                f"{_who(principal)} may not open this page (needs {self.permission})"
            )
        return principal

    def __repr__(self) -> str:
        return f"require_page({self.permission!r})"


def require_page(permission: str) -> RequirePage:
    """Return the page dependency requiring ``permission``."""
    return RequirePage(permission)


@dataclass(frozen=True, slots=True)
class RouteRule:
    """The permission a route declares and whether it is an API route or a page."""

    path: str
    methods: frozenset[str]
    permissions: tuple[str, ...]
    kind: str  # "api", "page" or "none"


def _declared(dependant: Dependant) -> Iterator[Authorize | RequirePage]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Authorize | RequirePage):
            yield dependency.call
        yield from _declared(dependency)


def route_rules(app: FastAPI) -> list[RouteRule]:
    """Return every route of ``app`` with the permissions it declares (for the matrix test)."""
    rules = []
    for context in iter_route_contexts(app.routes):
        path = context.path
        if path is None:
            continue
        dependant = getattr(context, "dependant", None)
        found = list(_declared(dependant)) if isinstance(dependant, Dependant) else []
        kinds = {"page" if isinstance(item, RequirePage) else "api" for item in found}
        rules.append(
            RouteRule(
                path=path,
                methods=frozenset(context.methods or ()),
                permissions=tuple(dict.fromkeys(item.permission for item in found)),
                kind="page" if "page" in kinds else "api" if kinds else "none",
            )
        )
    return rules
